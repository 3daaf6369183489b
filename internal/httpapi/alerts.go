package httpapi

import (
	"context"
	"net/http"

	"github.com/ratemon/ratemon/alerting"
)

// Alerts lists the active alerts; *alerting.Alerting implements it.
type Alerts interface {
	Active(ctx context.Context) ([]alerting.Alert, error)
}

// alertList is the answer of GET /v1/alerts.
type alertList struct {
	Alerts []alerting.Alert `json:"alerts"`
}

// alerts answers GET /v1/alerts with the alerts active now, exceeded first.
func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	if a.opts.Alerts == nil {
		writeError(w, http.StatusNotFound, "alerting is not enabled on this daemon")
		return
	}
	list, err := a.opts.Alerts.Active(r.Context())
	if err != nil {
		a.log.Warn("list alerts", "err", err)
		writeError(w, http.StatusServiceUnavailable, "redis unavailable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, alertList{Alerts: list})
}
