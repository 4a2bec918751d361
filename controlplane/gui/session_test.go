package gui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	h := newGUI(t, world{meshes: []string{"default"}, services: 1, dps: 1}.build(t), "")
	for _, path := range []string{"/gui/", "/gui/services", "/gui/dataplanes", "/gui/policies", "/gui/static/gui.js", "/gui/nope", "/gui/login"} {
		rec := get(t, h, path, nil)
		for k, want := range map[string]string{
			"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	if !strings.Contains(CSP, "default-src 'none'") || strings.Contains(CSP, "unsafe") {
		t.Fatalf("CSP is not strict: %s", CSP)
	}
}

func login(t *testing.T, h http.Handler, token, origin string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "/gui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestTokenLogin(t *testing.T) {
	const token = "s3cret-admin-token"
	h := newGUI(t, world{meshes: []string{"default"}, services: 1, dps: 1}.build(t), token)

	if rec := get(t, h, "/gui/dataplanes", nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/gui/login" {
		t.Fatalf("no credentials: %d %q, want a redirect to the login form", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get(t, h, "/gui/dataplanes", map[string]string{"Authorization": "Bearer wrong"}); rec.Code != http.StatusSeeOther {
		t.Fatalf("wrong bearer: %d", rec.Code)
	}
	if rec := get(t, h, "/gui/dataplanes", map[string]string{"Authorization": "Bearer " + token}); rec.Code != 200 {
		t.Fatalf("bearer: %d", rec.Code)
	}
	if rec := login(t, h, "wrong", ""); rec.Code != http.StatusUnauthorized || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("wrong token: %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
	if rec := login(t, h, token, "http://evil.example"); rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("cross-origin login: %d", rec.Code)
	}
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}} {
		req := httptest.NewRequest("POST", "/gui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
			t.Fatalf("login with %v: %d, want 403", hdr, rec.Code)
		}
	}
	rec := login(t, h, token, "http://example.com") // httptest's Host
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("login: %d, cookies %v", rec.Code, cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/gui/" || strings.Contains(c.Value, token) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/gui/, no token", c)
	}
	if rec := get(t, h, "/gui/dataplanes", map[string]string{"Cookie": c.Name + "=" + c.Value}); rec.Code != 200 {
		t.Fatalf("with the session cookie: %d", rec.Code)
	}
	// Tampered, expired-looking and foreign-token cookies open nothing.
	exp, sig, _ := strings.Cut(c.Value, ".")
	other := newGUI(t, world{meshes: []string{"default"}}.build(t), "another-token")
	for name, tc := range map[string]struct {
		h     http.Handler
		value string
	}{
		"tampered expiry":  {h, exp + "9." + sig},
		"bad signature":    {h, exp + "." + strings.Repeat("A", len(sig))},
		"no signature":     {h, exp},
		"other CP's token": {other, c.Value},
	} {
		if rec := get(t, tc.h, "/gui/", map[string]string{"Cookie": CookieName + "=" + tc.value}); rec.Code != http.StatusSeeOther {
			t.Errorf("%s: %d, want the login redirect", name, rec.Code)
		}
	}
}
