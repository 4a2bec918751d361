package gui

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CookieName is the GUI's session cookie.
const CookieName = "ecsmesh_gui_session"

// SessionTTL is how long a GUI login lasts.
const SessionTTL = 8 * time.Hour

// A browser cannot attach the admin API's bearer token to a page load, so
// with a token configured the GUI has a login form: POST /gui/login with
// the token sets a session cookie, "<expiry>.<HMAC-SHA256(key, expiry)>",
// where key is derived from the token. The cookie never holds the token
// (nor anything it can be recovered from), expires after SessionTTL,
// stops working when the token changes, is HttpOnly, SameSite=Strict,
// Path=/gui/ and Secure when the admin API serves TLS, and opens the GUI
// only: the JSON API still requires the bearer header.

func sessionKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ecsmesh gui session key v1"))
	return m.Sum(nil)
}

func (g *GUI) sign(exp int64) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte("session\x00" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionValid reports whether r carries an unexpired session cookie
// signed with the current token's key.
func (g *GUI) sessionValid(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	if err != nil || g.key == nil {
		return false
	}
	expStr, sig, ok := strings.Cut(c.Value, ".")
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if !ok || err != nil || g.o.Now().Unix() >= exp || exp > g.o.Now().Add(SessionTTL).Unix() {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(g.sign(exp)))
}

func (g *GUI) bearerValid(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(g.o.Token))
	return ok && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// authed lets a request through without a token configured, or with the
// bearer header or a valid session cookie; a browser without either is
// sent to the login form.
func (g *GUI) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if g.key == nil || g.bearerValid(r) || g.sessionValid(r) {
			next(w, r)
			return
		}
		http.Redirect(w, r, "/gui/login", http.StatusSeeOther)
	}
}

type loginData struct {
	Error    string
	TokenSet bool
}

func (g *GUI) loginPage(w http.ResponseWriter, r *http.Request) {
	if g.key == nil {
		http.Redirect(w, r, "/gui/", http.StatusSeeOther)
		return
	}
	g.render(w, r, http.StatusOK, "login", "Sign in", loginData{TokenSet: true})
}

// sameOrigin reports whether a form POST comes from a page of this
// origin (CSRF). Browsers send Sec-Fetch-Site; it must say same-origin.
// Without it, Origin, when sent, must be this scheme and Host: the GUI's
// Referrer-Policy no-referrer makes browsers send "Origin: null" on its
// own forms, so "null" passes only with Sec-Fetch-Site: same-origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+r.Host
}

func (g *GUI) login(w http.ResponseWriter, r *http.Request) {
	if g.key == nil {
		http.Redirect(w, r, "/gui/", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		g.fail(w, r, http.StatusForbidden, "cross-origin sign-in refused", "sign in from the GUI's own login page")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		g.fail(w, r, http.StatusBadRequest, "cannot read the sign-in form", err.Error())
		return
	}
	got := sha256.Sum256([]byte(r.PostForm.Get("token")))
	want := sha256.Sum256([]byte(g.o.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		g.o.Logger.Warn("gui: sign-in refused: wrong admin token", "remote", r.RemoteAddr)
		g.render(w, r, http.StatusUnauthorized, "login", "Sign in",
			loginData{TokenSet: true, Error: "That is not the admin token (ECSMESH_ADMIN_TOKEN)."})
		return
	}
	exp := g.o.Now().Add(SessionTTL).Unix()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: strconv.FormatInt(exp, 10) + "." + g.sign(exp), Path: "/gui/",
		Expires: time.Unix(exp, 0), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/gui/", http.StatusSeeOther)
}

func (g *GUI) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		g.fail(w, r, http.StatusForbidden, "cross-origin sign-out refused", "sign out from the GUI")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/gui/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/gui/login", http.StatusSeeOther)
}
