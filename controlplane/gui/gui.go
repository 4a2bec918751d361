// Package gui is the control plane's read-only web GUI, served by the
// admin API under /gui/: an overview, services, dataplanes (with the
// resolved xDS summary of one) and every policy as YAML. Pages are
// rendered on the server (html/template, embedded), with one small script
// for live filtering and refresh; nothing loads from elsewhere.
//
//	GET  /gui/                              overview
//	GET  /gui/services                      services (?q= &mesh= &sort= &dir= &page=)
//	GET  /gui/dataplanes                    dataplanes (same parameters)
//	GET  /gui/dataplanes/{mesh}/{name}      one dataplane and its xDS summary
//	GET  /gui/policies                      every non-Dataplane resource
//	GET  /gui/policies/{kind}/{name}        one resource as YAML (?mesh=)
//	GET  /gui/static/{file}                 the stylesheet and the script
//	GET  /gui/login, POST /gui/login        sign in with the admin token
//	POST /gui/logout                        end the session
//
// With an admin token configured, a page needs either the bearer header or
// the session cookie the login form sets (see session.go). Every response
// carries a strict Content-Security-Policy; there is no write action.
package gui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecsmesh/ecsmesh/controlplane/dns"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every GUI response: only this
// origin's script and stylesheet, no inline code, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Inspector renders a dataplane's current, redacted xDS resources as
// JSON (admin.Inspector; *xds.Server implements it).
type Inspector interface {
	InspectDataplane(ctx context.Context, mesh, name string) ([]byte, error)
}

// Options configure the GUI. Every source is one the admin API or the
// DNS reconciler already reads: there is no second copy of the state.
type Options struct {
	// Manager reads resources, as the admin API does. Required.
	Manager *manager.Manager
	// Store reads VIPs, session records and CA records. Required.
	Store store.Store
	// Inspector renders a dataplane's xDS; nil: the detail page says so.
	Inspector Inspector
	// DNS returns the DNS reconciler's status; nil or nil result: not
	// started.
	DNS func() *dns.Status
	// Metrics is the CP's registry (login refusals, DNS counters); nil:
	// none shown.
	Metrics prometheus.Gatherer
	// Domain and ZoneID name services (KUMA_DNS_SERVER_DOMAIN, the
	// Route53 hosted zone ID) as the DNS writer does.
	Domain, ZoneID string
	// InstanceID names this replica.
	InstanceID string
	// Token is the admin token; empty: no login (the admin API then
	// answers loopback clients only).
	Token string
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// GUI serves the pages.
type GUI struct {
	o       Options
	mu      sync.Mutex
	dpCache map[store.Key]*cachedDataplane
	window  window
	pages   map[string]*template.Template
	key     []byte // session cookie HMAC key, from the token
}

// New parses the templates and returns the GUI.
func New(o Options) (*GUI, error) {
	if o.Manager == nil || o.Store == nil {
		return nil, errors.New("gui: Options.Manager and Options.Store are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &GUI{o: o, pages: map[string]*template.Template{}}
	g.window.observe(o.Now(), map[string]float64{}) // the counters start at zero with the process
	if o.Token != "" {
		g.key = sessionKey(o.Token)
	}
	funcs := template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format(time.RFC3339)
		},
		"path":  url.PathEscape,
		"query": url.QueryEscape,
		"join":  strings.Join,
	}
	for _, name := range []string{"overview", "services", "dataplanes", "dataplane", "policies", "policy", "login", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/list.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("gui: parsing template %s: %w", name, err)
		}
		g.pages[name] = t
	}
	return g, nil
}

// Handler returns the /gui/ routes, for the admin API's mux.
func (g *GUI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /gui/static/", http.StripPrefix("/gui/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET /gui/login", g.loginPage)
	mux.HandleFunc("POST /gui/login", g.login)
	mux.HandleFunc("POST /gui/logout", g.logout)
	mux.HandleFunc("GET /gui/{$}", g.authed(g.overview))
	mux.HandleFunc("GET /gui/services", g.authed(g.services))
	mux.HandleFunc("GET /gui/dataplanes", g.authed(g.dataplanes))
	mux.HandleFunc("GET /gui/dataplanes/{mesh}/{name}", g.authed(g.dataplane))
	mux.HandleFunc("GET /gui/policies", g.authed(g.policies))
	mux.HandleFunc("GET /gui/policies/{kind}/{name}", g.authed(g.policy))
	mux.HandleFunc("/gui/", g.authed(func(w http.ResponseWriter, r *http.Request) {
		g.fail(w, r, http.StatusNotFound, "no such page", "see the links above")
	}))
	return secure(mux)
}

// secure sets the headers every GUI response carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// view is what every page template receives.
type view struct {
	Title, Nav string
	Now        time.Time
	Instance   string
	LoggedIn   bool
	Data       any
}

func (g *GUI) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	var buf bytes.Buffer
	v := view{Title: title, Nav: name, Now: g.o.Now(), Instance: g.o.InstanceID, LoggedIn: g.key != nil && g.sessionValid(r), Data: data}
	if err := g.pages[name].Execute(&buf, v); err != nil {
		g.o.Logger.Error("gui: rendering a page", "page", name, "error", err)
		http.Error(w, "gui: rendering failed (see the CP log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct{ Message, Hint string }

func (g *GUI) fail(w http.ResponseWriter, r *http.Request, status int, msg, hint string) {
	g.render(w, r, status, "error", msg, errorData{Message: msg, Hint: hint})
}

func (g *GUI) failErr(w http.ResponseWriter, r *http.Request, err error) {
	g.o.Logger.Error("gui: reading state", "path", r.URL.Path, "error", err)
	g.fail(w, r, http.StatusInternalServerError, "cannot read the control plane's state", err.Error())
}
