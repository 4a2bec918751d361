package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func newRevokeCmd(g *globals, env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke dataplane MESH/NAME",
		Short: "end a Dataplane's tokens and ADS streams at once (its role may log in again: remove the role's tags to stop it)",
		Long: `revoke dataplane MESH/NAME refuses every dataplane token of that Dataplane issued
up to now, on every control plane replica, and closes the streams they opened.
A sidecar whose IAM role still allows the Dataplane logs in again and gets a new
token: to keep a role out, remove its kuma.io/* tags (open streams are closed at
the next role re-check) and revoke.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "dataplane" {
				return fmt.Errorf("revoke: only dataplane tokens can be revoked: use revoke dataplane MESH/NAME, got %q", args[0])
			}
			mesh, name, ok := strings.Cut(args[1], "/")
			if !ok || mesh == "" || name == "" || strings.Contains(name, "/") {
				return fmt.Errorf("revoke: give the Dataplane as MESH/NAME (e.g. default/web-1), got %q", args[1])
			}
			out, err := g.client().do(cmd.Context(), "POST", "/meshes/"+url.PathEscape(mesh)+"/dataplanes/"+url.PathEscape(name)+"/revoke", []byte{})
			if err != nil {
				return fmt.Errorf("revoke: %w", err)
			}
			var res struct {
				RevokedAt string `json:"revokedAt"`
			}
			_ = json.Unmarshal(out, &res)
			fprintf(env.Stdout, "dataplane %s/%s: tokens issued up to %s revoked, their streams closed\n", mesh, name, res.RevokedAt)
			fprintf(env.Stdout, "its role may log in again and get a new token; remove the role's tags to stop it\n")
			return nil
		},
	}
}
