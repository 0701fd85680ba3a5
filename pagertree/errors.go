package pagertree

import "github.com/ptsync/ptsync/internal/httpx"

// APIError is an answer outside 2xx; its Error reads "pagertree: POST /user
// answered 409: email taken". Use errors.As to get it from an error any
// method returns.
type APIError = httpx.APIError
