package webui

// The bounds, for the store tests outside the package.
const (
	MaxSessionsPerUser = maxSessionsPerUser
	MaxScrollback      = maxScrollback
)
