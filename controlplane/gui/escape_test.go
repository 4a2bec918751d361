package gui

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// allowedTags are the only elements a page may hold: a payload that
// becomes markup shows up as another element or attribute.
var allowedTags = map[string]bool{
	"html": true, "head": true, "meta": true, "title": true, "link": true, "script": true, "body": true, "header": true,
	"a": true, "nav": true, "form": true, "input": true, "span": true, "label": true, "button": true, "main": true,
	"h1": true, "h2": true, "h3": true, "p": true, "section": true, "div": true, "table": true, "thead": true, "tbody": true,
	"tr": true, "th": true, "td": true, "code": true, "small": true, "br": true, "pre": true, "ul": true, "li": true,
}

// checkMarkup fails when the page holds an element, attribute or link
// the templates do not write.
func checkMarkup(t *testing.T, page, body string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(body))
	scripts := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		if !allowedTags[tok.Data] {
			t.Errorf("%s: unexpected element <%s>", page, tok.Data)
		}
		if tok.Data == "script" {
			scripts++
		}
		for _, a := range tok.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") || a.Key == "style" || a.Key == "srcdoc" {
				t.Errorf("%s: unexpected attribute %s=%q on <%s>", page, a.Key, a.Val, tok.Data)
			}
			if a.Key == "href" || a.Key == "src" || a.Key == "action" {
				u, err := url.Parse(a.Val)
				if err != nil || u.Scheme != "" || u.Host != "" || (!strings.HasPrefix(u.Path, "/gui/") && !strings.HasPrefix(a.Val, "?")) {
					t.Errorf("%s: link %s=%q leaves the GUI", page, a.Key, a.Val)
				}
			}
		}
	}
	if scripts != 1 {
		t.Errorf("%s: %d <script> elements, want the one external script", page, scripts)
	}
}

var payloads = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`'><svg/onload=alert(1)>`,
	`javascript:alert(1)`,
	`</textarea></pre><script>alert(1)</script>`,
	`{{.}}<!--`,
	`x" onmouseover="alert(1)`,
	"\u2028<b>\u0000",
}

func TestPayloadsRenderEscaped(t *testing.T) {
	for _, p := range payloads {
		t.Run(p, func(t *testing.T) {
			st := world{meshes: []string{"m" + p}, services: 2, dps: 3,
				name:    func(i int) string { return p + string(rune('a'+i)) },
				service: func(i int) string { return "svc" + p + string(rune('a'+i)) },
				label:   p, policy: "pol" + p}.build(t)
			h := newGUI(t, st, "")
			pages := []string{"/gui/", "/gui/services", "/gui/dataplanes", "/gui/policies",
				"/gui/dataplanes/" + url.PathEscape("m"+p) + "/" + url.PathEscape(p+"a"),
				"/gui/policies/meshtimeouts/" + url.PathEscape("pol"+p) + "?mesh=" + url.QueryEscape("m"+p),
				"/gui/dataplanes?q=" + url.QueryEscape(p), "/gui/services?sort=" + url.QueryEscape(p)}
			for _, path := range pages {
				rec := get(t, h, path, nil)
				if rec.Code != 200 {
					t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
				}
				body := rec.Body.String()
				checkMarkup(t, path, body)
				if strings.Contains(p, "<") && strings.Contains(body, p) {
					t.Errorf("%s: payload %q appears unescaped", path, p)
				}
			}
			// The names did reach the pages, escaped.
			if body := get(t, h, "/gui/dataplanes", nil).Body.String(); !strings.Contains(html.UnescapeString(body), strings.ReplaceAll(p, "\x00", "\uFFFD")+"a") {
				t.Errorf("dataplanes page does not show the dataplane %q", p+"a")
			}
		})
	}
}

func FuzzPayloadsRenderEscaped(f *testing.F) {
	for _, p := range payloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		st := world{meshes: []string{"default"}, services: 1, dps: 1,
			name: func(int) string { return "dp" + p }, service: func(int) string { return "svc" + p }, label: p, policy: "pol" + p}.build(t)
		h := newGUI(t, st, "")
		for _, path := range []string{"/gui/", "/gui/services", "/gui/dataplanes", "/gui/policies",
			"/gui/dataplanes/default/" + url.PathEscape("dp"+p), "/gui/dataplanes?q=" + url.QueryEscape(p)} {
			rec := get(t, h, path, nil)
			if rec.Code != 200 && rec.Code != 404 {
				t.Fatalf("%s: status %d", path, rec.Code)
			}
			checkMarkup(t, path, rec.Body.String())
		}
	})
}
