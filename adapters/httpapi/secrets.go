package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundleconfig"
)

// SecretWriter sets secrets and rotates their key (dispatcher.Secrets).
type SecretWriter interface {
	Set(ctx context.Context, actor string, bundle string, layer bundleconfig.Layer, key, value string) (int, error)
	RotateKey(ctx context.Context, actor string) (string, int, error)
}

// secretBody sets one secret. The value comes here, in a request body
// the server never logs or records, and never in a chat message.
type secretBody struct {
	Bundle string `json:"bundle"`
	Key    string `json:"key"`
	// Layer is base (or empty), room/ROOM, group/GROUP or user/USER.
	Layer string `json:"layer,omitempty"`
	Value string `json:"value"`
}

// SecretSetAnswer says which version of the secret was stored.
type SecretSetAnswer struct {
	Bundle  string `json:"bundle"`
	Key     string `json:"key"`
	Layer   string `json:"layer"`
	Version int    `json:"version"`
}

// KeyRotationAnswer names the new key and counts the values encrypted
// again under it.
type KeyRotationAnswer struct {
	KeyID       string `json:"key_id"`
	Reencrypted int    `json:"reencrypted"`
}

func (a *API) setSecret(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permManageBundles) {
		return
	}
	if err := onlyParams(r.URL.Query(), nil); err != nil {
		writeParamError(w, err)
		return
	}
	var body secretBody
	if !decodeBody(w, r, &body, `{"bundle": ..., "key": ..., "layer": ..., "value": ...}`) {
		return
	}
	if a.Secrets == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{bundleconfig.ErrNoVault.Error()})
		return
	}
	if body.Layer == "" {
		body.Layer = "base"
	}
	layer, err := bundleconfig.ParseLayer(body.Layer)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	version, err := a.Secrets.Set(r.Context(), user.Username, body.Bundle, layer, body.Key, body.Value)
	if err != nil {
		writeJSON(w, secretErrorStatus(err), apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, SecretSetAnswer{Bundle: body.Bundle, Key: body.Key, Layer: layer.String(), Version: version})
}

func (a *API) rotateSecretKey(w http.ResponseWriter, r *http.Request, user access.UserInfo) {
	if !a.requirePermission(w, user, permAdmin) {
		return
	}
	if err := onlyParams(r.URL.Query(), nil); err != nil {
		writeParamError(w, err)
		return
	}
	var body struct{}
	if !decodeBody(w, r, &body, `{}`) {
		return
	}
	if a.Secrets == nil {
		writeJSON(w, http.StatusNotImplemented, apiError{bundleconfig.ErrNoVault.Error()})
		return
	}
	keyID, n, err := a.Secrets.RotateKey(r.Context(), user.Username)
	if err != nil {
		writeJSON(w, secretErrorStatus(err), apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, KeyRotationAnswer{KeyID: keyID, Reencrypted: n})
}

// secretErrorStatus maps a secret error to its status. The errors name
// the secret and its layer, never its value.
func secretErrorStatus(err error) int {
	switch {
	case errors.Is(err, bundleconfig.ErrNoVault):
		return http.StatusNotImplemented
	case bundleconfig.KindOf(err) == bundleconfig.KindInvalid:
		return http.StatusBadRequest
	case bundleconfig.KindOf(err) == bundleconfig.KindConflict:
		return http.StatusConflict
	}
	var notFound interface{ NotFound() bool }
	if errors.As(err, &notFound) && notFound.NotFound() {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}
