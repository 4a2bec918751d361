package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ecsmesh/ecsmesh/api/resource"
)

func newApplyCmd(g *globals, env Env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "create or replace the resources of a YAML/JSON file (all or nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("apply: -f FILE is required (use - for standard input)")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(io.LimitReader(env.Stdin, 1<<20+1))
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("apply: reading %s: %w", file, err)
			}
			// Validate locally first: every violation of every document is
			// printed and nothing is sent.
			if _, err := resource.Decode(data); err != nil {
				return fmt.Errorf("apply: %s is invalid; nothing was stored:\n%w", file, err)
			}
			out, err := g.client().do(cmd.Context(), "POST", "/apply", data)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			var res struct {
				Items    []map[string]any `json:"items"`
				Warnings []string         `json:"warnings"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("apply: unexpected answer: %w", err)
			}
			for _, w := range res.Warnings {
				fprintf(env.Stderr, "warning: %s\n", w)
			}
			for _, it := range res.Items {
				fprintf(env.Stdout, "%s %s applied\n", strings.ToLower(fmt.Sprint(it["type"])), qualified(it))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to apply (- for standard input)")
	return cmd
}

func qualified(it map[string]any) string {
	if m, ok := it["mesh"].(string); ok && m != "" {
		return m + "/" + fmt.Sprint(it["name"])
	}
	return fmt.Sprint(it["name"])
}

// path returns the API path of a kind (and name).
func path(k resource.KindInfo, mesh, name string) string {
	var p string
	switch {
	case k.Name == resource.KindMesh:
		p = "/meshes"
	case k.Scope == resource.ScopeMesh || (k.Scope == resource.ScopeEither && mesh != ""):
		p = "/meshes/" + url.PathEscape(mesh) + "/" + k.Plural
	default:
		p = "/" + k.Plural
	}
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

func lookupKind(s string) (resource.KindInfo, error) {
	k, ok := resource.LookupKind(s)
	if !ok {
		return k, fmt.Errorf("unknown kind %q; use one of %s (singular or plural, any case)", s, strings.Join(resource.KindNames(), ", "))
	}
	return k, nil
}

func newGetCmd(g *globals, env Env) *cobra.Command {
	var mesh, output string
	var allMeshes bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "show resources (table, yaml or json)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			m := mesh
			if allMeshes && name == "" {
				m = ""
			}
			if k.Scope == resource.ScopeEither && !cmd.Flags().Changed("mesh") {
				m = ""
			}
			p := path(k, m, name)
			if k.Scope == resource.ScopeMesh && m == "" {
				p = "/" + k.Plural
			}
			out, err := g.client().do(cmd.Context(), "GET", p, nil)
			if err != nil {
				return fmt.Errorf("get: %w", err)
			}
			return render(env.Stdout, out, output, name == "")
		},
	}
	cmd.Flags().StringVarP(&mesh, "mesh", "m", "default", "mesh of mesh-scoped kinds")
	cmd.Flags().BoolVarP(&allMeshes, "all-meshes", "A", false, "list across every mesh")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	return cmd
}

func render(w io.Writer, body []byte, output string, list bool) error {
	switch output {
	case "json":
		_, err := w.Write(body)
		return err
	case "yaml":
		y, err := yaml.JSONToYAML(body)
		if err != nil {
			return fmt.Errorf("get: rendering YAML: %w", err)
		}
		_, err = w.Write(y)
		return err
	case "table":
	default:
		return fmt.Errorf("get: -o must be table, yaml or json, got %q", output)
	}
	var items []map[string]any
	if list {
		var l struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("get: unexpected answer: %w", err)
		}
		items = l.Items
	} else {
		var one map[string]any
		if err := json.Unmarshal(body, &one); err != nil {
			return fmt.Errorf("get: unexpected answer: %w", err)
		}
		items = []map[string]any{one}
	}
	sort.SliceStable(items, func(i, j int) bool { return qualified(items[i]) < qualified(items[j]) })
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "MESH\tNAME\tTYPE\tAGE")
	for _, it := range items {
		age := ""
		if s, ok := it["creationTime"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				age = time.Since(t).Round(time.Second).String()
			}
		}
		fmt.Fprintf(tw, "%v\t%v\t%v\t%s\n", orDash(it["mesh"]), it["name"], it["type"], age)
	}
	return tw.Flush()
}

func orDash(v any) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return "-"
}

func newDeleteCmd(g *globals, env Env) *cobra.Command {
	var mesh string
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "delete a resource",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			m := mesh
			if k.Scope == resource.ScopeEither && !cmd.Flags().Changed("mesh") {
				m = ""
			}
			if _, err := g.client().do(cmd.Context(), "DELETE", path(k, m, args[1]), nil); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			fprintf(env.Stdout, "deleted %s %q\n", k.Name, args[1])
			return nil
		},
	}
	cmd.Flags().StringVarP(&mesh, "mesh", "m", "default", "mesh of mesh-scoped kinds")
	return cmd
}

func newInspectCmd(g *globals, env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect dataplane MESH/NAME",
		Short: "print a dataplane's current xDS resources as JSON",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k, err := lookupKind(args[0]); err != nil || k.Name != resource.KindDataplane {
				return fmt.Errorf("inspect: only dataplanes can be inspected, got %q", args[0])
			}
			mesh, name, ok := strings.Cut(args[1], "/")
			if !ok || mesh == "" || name == "" {
				return fmt.Errorf("inspect: name the dataplane as MESH/NAME, e.g. default/web-1, got %q", args[1])
			}
			out, err := g.client().do(cmd.Context(), "GET", "/meshes/"+url.PathEscape(mesh)+"/dataplanes/"+url.PathEscape(name)+"/xds", nil)
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			_, err = env.Stdout.Write(out)
			return err
		},
	}
}
