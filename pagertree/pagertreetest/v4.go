package pagertreetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ptsync/ptsync/pagertree"
)

// DefaultAPIKey is the key a v4 server accepts when Options.APIKey is empty.
const DefaultAPIKey = "pt4_test_key"

// v4 route templates, as counted in Stats.Requests.
const (
	routeAccountUsers = pagertree.APIPrefix + "/account_users"
	routeAccountUser  = routeAccountUsers + "/:id"
	routeTeamsV4      = pagertree.APIPrefix + "/teams"
	routeTeamV4       = routeTeamsV4 + "/:id"
	// /users/:id is served only to refuse its DELETE, as the docs do.
	routeUsersV4 = pagertree.APIPrefix + "/users"
	routeUserV4  = routeUsersV4 + "/:id"
)

func matchRouteV4(path string) route {
	switch path {
	case routeAccountUsers, routeTeamsV4:
		return route{template: path}
	}
	for _, collection := range []string{routeAccountUsers, routeTeamsV4, routeUsersV4} {
		if id, ok := itemID(path, collection); ok {
			return route{template: collection + "/:id", id: id}
		}
	}
	return route{template: routeUnmatched}
}

// authenticateV4 checks the Bearer key. Keys do not expire: Faults.TokenTTL
// and ExpireTokens do not apply.
func (s *Server) authenticateV4(r *http.Request) (response, bool) {
	auth := r.Header.Get("Authorization")
	key, bearer := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "":
		return errorResponse(http.StatusUnauthorized, `an API key is required: "Authorization: Bearer <key>"`), false
	case !bearer:
		return errorResponse(http.StatusUnauthorized, `invalid Authorization: the API key goes as "Bearer <key>"`), false
	case key != s.opts.APIKey:
		return errorResponse(http.StatusUnauthorized, "invalid API key"), false
	}
	return response{}, true
}

// handleV4 serves an authenticated v4 request.
func (s *Server) handleV4(r *http.Request, rt route, body []byte) response {
	st, now := s.v4, s.now()
	var (
		result any
		err    error
		status = http.StatusOK
	)
	switch rt.template + " " + r.Method {
	case routeAccountUsers + " GET":
		result, err = list(r.URL.Query(), st.accountUsers, copyAccountUser)
	case routeAccountUsers + " POST":
		var p accountUserParams
		if err = decodeV4(body, &p); err == nil {
			status = http.StatusCreated
			result, err = st.createAccountUser(p, now)
		}
	case routeAccountUser + " GET":
		var au *pagertree.AccountUser
		if au, err = st.findAccountUser(rt.id); err == nil {
			result = copyAccountUser(au)
		}
	case routeAccountUser + " PUT":
		var p accountUserParams
		if err = decodeV4(body, &p); err == nil {
			result, err = st.updateAccountUser(rt.id, p, now)
		}
	case routeAccountUser + " DELETE":
		status, err = http.StatusNoContent, st.deleteAccountUser(rt.id, now)
	case routeTeamsV4 + " GET":
		result, err = list(r.URL.Query(), st.teams, copyTeamV4)
	case routeTeamsV4 + " POST":
		var p teamParams
		if err = decodeV4(body, &p); err == nil {
			status = http.StatusCreated
			result, err = st.createTeam(p, now)
		}
	case routeTeamV4 + " GET":
		var t *pagertree.TeamV4
		if t, err = st.findTeam(rt.id); err == nil {
			result = copyTeamV4(t)
		}
	case routeTeamV4 + " PUT":
		var p teamParams
		if err = decodeV4(body, &p); err == nil {
			result, err = st.updateTeam(rt.id, p, now)
		}
	case routeTeamV4 + " DELETE":
		status, err = http.StatusNoContent, st.deleteTeam(rt.id)
	case routeUserV4 + " DELETE":
		err = unprocessable("deleting a user is not supported: delete its account user (DELETE %s)", routeAccountUser)
	}
	switch {
	case errors.Is(err, errNotFound):
		return errorResponse(http.StatusNotFound, err.Error())
	case errors.Is(err, errUnprocessable):
		return errorResponse(http.StatusUnprocessableEntity, err.Error())
	case err != nil:
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	return response{status: status, body: result}
}

// decodeV4 decodes a v4 body into v as Rails would take it: malformed JSON
// is a 400; a value of the wrong type a 422, as strong params would drop
// it and validation then fail; unknown keys are dropped (unpermitted
// params); an empty body is an empty object.
func decodeV4(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !json.Valid(body) {
		return decodeJSON(body, v) // for its message
	}
	err := json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return unprocessable("the body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return unprocessable("'%s' is invalid: %s given", typeErr.Field, typeErr.Value)
	case err != nil:
		return unprocessable("%v", err)
	}
	return nil
}
