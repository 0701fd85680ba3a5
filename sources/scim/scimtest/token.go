package scimtest

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// serveToken is the client-credentials grant of RFC 6749 §4.4; errors are
// §5.2 bodies.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint takes POST")
		return
	}
	// Only the body counts: ParseForm fills PostForm from a form-encoded
	// body and leaves it empty for other content types.
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the body is not form-encoded")
		return
	}
	f := r.PostForm
	switch grant := f.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+grant+" is not supported")
		return
	}
	id, secret := f.Get("client_id"), f.Get("client_secret")
	user, pass, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic.
		user, pass = formUnescape(user), formUnescape(pass)
		if secret != "" {
			tokenError(w, http.StatusBadRequest, "invalid_request", "the client authenticated twice (Basic and client_secret)")
			return
		}
		if s.opts.SecretInBodyOnly {
			w.Header().Set("WWW-Authenticate", `Basic realm="scimtest"`)
			tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed: this server takes client_secret in the body only")
			return
		}
		id, secret = user, pass
	}
	if id == "" || secret == "" {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed: no client_id or client_secret")
		return
	}
	if s.opts.ClientID == "" || id != s.opts.ClientID ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="scimtest"`)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if s.opts.Scope != "" && !slices.Contains(strings.Fields(f.Get("scope")), s.opts.Scope) {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "the request must ask for the scope "+s.opts.Scope)
		return
	}
	s.mu.Lock()
	tok := s.issueLocked()
	s.mu.Unlock()
	writeTokenJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.TokenLifetime / time.Second),
	})
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func tokenError(w http.ResponseWriter, status int, code, description string) {
	writeTokenJSON(w, status, map[string]any{"error": code, "error_description": description})
}

func writeTokenJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, "application/json;charset=UTF-8", v)
}
