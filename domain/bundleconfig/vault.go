package bundleconfig

import (
	"context"
	"errors"
	"strconv"
)

// SecretRef names one version of one secret of a bundle.
type SecretRef struct {
	Bundle  string
	Layer   string
	Key     string
	Version int
}

// String names the secret without its value: "aws base AWS_SECRET v2".
func (r SecretRef) String() string {
	return r.Bundle + " " + r.Layer + " " + r.Key + " v" + strconv.Itoa(r.Version)
}

// ErrSecretNotFound says a vault holds no value for a secret's version:
// it was set again or removed since.
var ErrSecretNotFound = errors.New("secret value not found")

// ErrNoVault says the server has no vault to keep secrets in.
var ErrNoVault = errors.New("this server keeps no secrets: set LOGBOOK_SECRET_KEY_FILE")

// Vault is the port of secret sources: where the values of secrets live,
// outside the event log. Logbook's own adapter keeps them in the database,
// encrypted; an external secret manager can be another.
type Vault interface {
	// Put stores the value of one version of a secret.
	Put(ctx context.Context, ref SecretRef, value string) error
	// Reveal reads a version's value, or ErrSecretNotFound.
	Reveal(ctx context.Context, ref SecretRef) (string, error)
	// Delete removes one version's value.
	Delete(ctx context.Context, ref SecretRef) error
	// DeleteThrough removes the versions of ref's secret up to and
	// including ref.Version.
	DeleteThrough(ctx context.Context, ref SecretRef) error
}
