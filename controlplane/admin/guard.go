package admin

import (
	"bytes"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/ecsmesh/ecsmesh/controlplane/problem"
)

// BodyTypes are the media types a write may carry. A browser sends none of
// them cross-origin without a CORS preflight, which the admin API never
// answers, so a web page cannot forge a write (CSRF).
var BodyTypes = []string{"application/json", "application/yaml", "application/x-yaml", "text/yaml"}

// guard refuses what a browser could be made to send:
//
//   - writes (POST, PUT, PATCH, and DELETE with a body) whose
//     Content-Type is not JSON or YAML: 415 unsupported_media_type;
//   - without a token (loopback mode), any request whose Host is not a
//     loopback name or address: 403 host_not_loopback (DNS rebinding: a
//     page whose own name resolves to 127.0.0.1 is same-origin with the
//     API, but its Host header still names it);
//   - without a token, any request whose Origin is present and not a
//     loopback origin: 403 origin_not_loopback (CSRF).
//
// With a token the token decides: a browser never attaches it by itself.
func guard(tokenless bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tokenless {
			if !loopbackHost(r.Host) {
				problem.Write(w, problem.Newf(http.StatusForbidden, "host_not_loopback", "the admin API answers loopback names only",
					"Host %q is not 127.0.0.1, ::1 or localhost; without ECSMESH_ADMIN_TOKEN the API serves local clients only (set the token to reach it by another name)", r.Host))
				return
			}
			if o, ok := r.Header["Origin"]; ok && !loopbackOrigin(strings.Join(o, ",")) {
				problem.Write(w, problem.Newf(http.StatusForbidden, "origin_not_loopback", "cross-origin request refused",
					"Origin %q is not a loopback origin; web pages may not call the admin API", strings.Join(o, ",")))
				return
			}
		}
		if isWrite(r) && !bodyTypeAllowed(r.Header.Get("Content-Type")) && !guiForm(r) {
			problem.Write(w, problem.Newf(http.StatusUnsupportedMediaType, "unsupported_media_type", "writes must carry a JSON or YAML body",
				"Content-Type %q is not accepted; send Content-Type: application/json or application/yaml", r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guiForm reports whether r is the GUI's sign-in or sign-out form: a
// POST of an HTML form to exactly /gui/login or /gui/logout, which change
// no state but the caller's own session cookie. The GUI refuses them
// from another origin; every other write still needs a JSON or YAML body.
func guiForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && (r.URL.Path == "/gui/login" || r.URL.Path == "/gui/logout") &&
		mt == "application/x-www-form-urlencoded"
}

// isWrite reports whether r changes state and so must declare its body.
// A DELETE without a body (curl -X DELETE) needs no type: browsers always
// preflight DELETE.
func isWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	case http.MethodDelete:
		return r.ContentLength != 0
	}
	return true
}

func bodyTypeAllowed(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, t := range BodyTypes {
		if mt == t {
			return true
		}
	}
	return false
}

// loopbackHost reports whether a Host header (name or address, with or
// without a port) names this machine: localhost, 127.0.0.0/8 or ::1.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.IsLoopback()
}

// loopbackOrigin reports whether an Origin header is http(s) on a
// loopback host. "null" (sandboxed frames, file://) is not.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return loopbackHost(u.Host)
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// unredacted refuses inspect output that holds a PEM private key or a
// JWT: the Inspector redacts them, and the admin API does not trust that
// blindly (the output lands in terminals, tickets and CI logs).
func unredacted(out []byte) error {
	if bytes.Contains(out, []byte("PRIVATE KEY")) || jwtRE.Match(out) {
		return errors.New("admin: the xDS view holds key material; refusing to show it")
	}
	return nil
}
