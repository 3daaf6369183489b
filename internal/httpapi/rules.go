package httpapi

import (
	"net/http"

	"github.com/ratemon/ratemon/limiter"
)

// rules answers GET /v1/rules with the rules in force (limiter.RulesDoc), so
// that inline checkers compute limit keys as the daemon does.
func (a *API) rules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, limiter.DocOf(a.opts.Rules()))
}
