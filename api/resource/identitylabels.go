package resource

import (
	"sort"
	"text/template"
	"text/template/parse"
)

// LabelKeys lists the Dataplane label keys the identity reads: its
// selector's keys and every `label "key"` its trustDomain and path
// templates call. A label that decides an identity must be one the
// Dataplane's IAM role asserts (a tag of the same key), else a sidecar
// could write itself into another identity.
func (mi *MeshIdentity) LabelKeys() []string {
	if mi == nil {
		return nil
	}
	keys := map[string]bool{}
	if sel := mi.Spec.Selector.Dataplane; sel != nil {
		for k := range sel.MatchLabels {
			keys[k] = true
		}
	}
	for _, text := range []string{mi.Spec.SpiffeID.TrustDomain, mi.Spec.SpiffeID.Path} {
		for _, k := range templateLabelKeys(text) {
			keys[k] = true
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// templateLabelKeys returns the string arguments of every `label` call in
// text. A template that does not parse reads nothing (it cannot render
// and was refused when applied).
func templateLabelKeys(text string) []string {
	if text == "" {
		return nil
	}
	t, err := template.New("t").Funcs(template.FuncMap{"label": func(string) string { return "" }}).Parse(text)
	if err != nil || t.Tree == nil {
		return nil
	}
	var out []string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if len(n.Args) >= 2 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "label" {
					if s, ok := n.Args[1].(*parse.StringNode); ok {
						out = append(out, s.Text)
					}
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		}
	}
	walk(t.Tree.Root)
	return out
}
