package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func newRotateCmd(g *globals, env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate ca|signing-keys MESH",
		Short: "rotate a mesh's CA root or its token signing keys (old ones stay trusted until what they signed expires)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			what, mesh := args[0], args[1]
			if what != "ca" && what != "signing-keys" {
				return fmt.Errorf("rotate: what to rotate must be ca or signing-keys, got %q", what)
			}
			out, err := g.client().do(cmd.Context(), "POST", "/meshes/"+url.PathEscape(mesh)+"/rotate/"+what, []byte{})
			if err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			var res struct {
				Kids []string `json:"kids"`
			}
			_ = json.Unmarshal(out, &res)
			if len(res.Kids) > 0 {
				fprintf(env.Stdout, "mesh %s: %s rotated (new key IDs %s)\n", mesh, what, strings.Join(res.Kids, ", "))
			} else {
				fprintf(env.Stdout, "mesh %s: %s rotated\n", mesh, what)
			}
			return nil
		},
	}
}
