package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ecsmesh/ecsmesh/controlplane/gui"
	"github.com/ecsmesh/ecsmesh/controlplane/manager"
	"github.com/ecsmesh/ecsmesh/controlplane/store/memory"
)

func guiServer(t *testing.T, token string) http.Handler {
	t.Helper()
	s := memory.New(nil)
	g, err := gui.New(gui.Options{Manager: manager.New(s), Store: s, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return Handler(Options{Manager: manager.New(s), Token: token, GUI: g.Handler()})
}

func serve(h http.Handler, method, path, host string, header map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = host
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The GUI keeps every rule of the admin API: loopback-only without a
// token, the token (or the GUI's own session) with one, and the session
// never opens the JSON API.
func TestGUIBehindTheGuard(t *testing.T) {
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	open := guiServer(t, "")
	if rec := serve(open, "GET", "/gui/", "127.0.0.1:5681", nil, ""); rec.Code != 200 {
		t.Fatalf("loopback GUI: %d", rec.Code)
	}
	if rec := serve(open, "GET", "/gui/", "evil.example", nil, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("DNS rebinding name: %d, want 403", rec.Code)
	}
	if rec := serve(open, "GET", "/gui/", "127.0.0.1", map[string]string{"Origin": "http://evil.example"}, ""); rec.Code != http.StatusForbidden {
		t.Fatalf("foreign Origin: %d, want 403", rec.Code)
	}
	if rec := serve(open, "GET", "/gui", "127.0.0.1", nil, ""); rec.Code != http.StatusMovedPermanently {
		t.Fatalf("/gui: %d", rec.Code)
	}
	// The form exemption is for exactly the GUI's login and logout.
	for _, p := range []string{"/apply", "/gui/login/x", "/gui/loginx", "/meshes/default"} {
		if rec := serve(open, "POST", p, "127.0.0.1", form, "a=b"); rec.Code != http.StatusUnsupportedMediaType {
			t.Errorf("form POST %s: %d, want 415", p, rec.Code)
		}
	}

	const token = "tok-123"
	locked := guiServer(t, token)
	if rec := serve(locked, "GET", "/gui/", "cp.internal", nil, ""); rec.Code != http.StatusSeeOther {
		t.Fatalf("no session: %d, want the login redirect", rec.Code)
	}
	rec := serve(locked, "POST", "/gui/login", "cp.internal", form, url.Values{"token": {token}}.Encode())
	if rec.Code != http.StatusSeeOther || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookie := map[string]string{"Cookie": gui.CookieName + "=" + rec.Result().Cookies()[0].Value}
	if rec := serve(locked, "GET", "/gui/policies", "cp.internal", cookie, ""); rec.Code != 200 {
		t.Fatalf("session: %d", rec.Code)
	}
	for _, p := range []string{"/meshes", "/dataplanes", "/"} {
		if rec := serve(locked, "GET", p, "cp.internal", cookie, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("JSON API %s with the GUI session: %d, want 401", p, rec.Code)
		}
	}
}
