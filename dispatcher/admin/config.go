package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/logbookhq/logbook/domain/access"
	"github.com/logbookhq/logbook/domain/bundle"
	"github.com/logbookhq/logbook/domain/bundleconfig"
	"github.com/logbookhq/logbook/domain/dispatch"
	"github.com/logbookhq/logbook/domain/run"
)

const (
	configUsage = "config set BUNDLE [--room=R | --group=G | --user=U] KEY=VALUE | unset BUNDLE [--room=R | --group=G | --user=U] KEY | show BUNDLE [--room=R] [--user=U]"
	secretUsage = "secret list BUNDLE | unset BUNDLE [--room=R | --group=G | --user=U] KEY (set a secret with `logbook secret set`, which reads the value from standard input)"
)

// layerOption reads the one layer --room, --group or --user names, or
// base without any.
func layerOption(c *adminCall) (bundleconfig.Layer, error) {
	layer := bundleconfig.BaseLayer
	given := 0
	for _, kind := range []bundleconfig.LayerKind{bundleconfig.Room, bundleconfig.Group, bundleconfig.User} {
		name, ok, err := stringOption(c, string(kind))
		if err != nil {
			return layer, err
		}
		if !ok {
			continue
		}
		given++
		if layer, err = bundleconfig.NewLayer(kind, name); err != nil {
			return layer, err
		}
	}
	if given > 1 {
		return layer, errors.New("name one layer: --room, --group or --user, or none for the base layer")
	}
	return layer, nil
}

// decideConfig decides a configuration command against the bundle's
// stream and stages its events.
func (a *admin) decideConfig(c *adminCall, cmd bundleconfig.Command) ([]any, error) {
	stream := bundleconfig.StreamOf(cmd)
	history, version, err := a.load(c.ctx, stream)
	if err != nil {
		return nil, err
	}
	events, err := bundleconfig.Decide(bundleconfig.Fold(history), cmd)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	a.record(c, stream, version, events...)
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out, nil
}

// installedNote says when a bundle is not installed, so a typo in its
// name is seen; configuring a bundle before installing it is allowed.
func installedNote(c *adminCall, name string) string {
	for _, b := range c.facts.InstalledBundles() {
		if b.Name == name {
			return ""
		}
	}
	return " (no bundle " + name + " is installed yet)"
}

func (a *admin) config(c *adminCall) (run.Result, error) {
	sub, args, err := subcommand(c, configUsage, "set", "unset", "show")
	if err != nil {
		return run.Result{}, err
	}
	if sub == "show" {
		if err := needArgs(args, 1, "config show BUNDLE [--room=R] [--user=U]"); err != nil {
			return run.Result{}, err
		}
		return a.configShow(c, args[0])
	}
	if err := needArgs(args, 2, configUsage); err != nil {
		return run.Result{}, err
	}
	layer, err := layerOption(c)
	if err != nil {
		return run.Result{}, err
	}
	if err := a.checkLayer(c, layer); err != nil {
		return run.Result{}, err
	}
	name := args[0]
	if sub == "set" {
		key, value, err := bundleconfig.ParseAssignment(args[1])
		if err != nil {
			return run.Result{}, err
		}
		changed, err := a.decideConfig(c, bundleconfig.SetValue{Bundle: name, Layer: layer, Key: key, Value: value})
		if err != nil {
			return run.Result{}, err
		}
		note := installedNote(c, name)
		return decided(changed != nil, fmt.Sprintf("Set %s in %s of bundle %s%s.", key, layer, name, note),
			fmt.Sprintf("%s already had that value in %s of bundle %s%s.", key, layer, name, note)), nil
	}
	changed, err := a.decideConfig(c, bundleconfig.UnsetValue{Bundle: name, Layer: layer, Key: args[1]})
	if err != nil {
		return run.Result{}, err
	}
	return decided(changed != nil, fmt.Sprintf("Unset %s in %s of bundle %s.", args[1], layer, name),
		fmt.Sprintf("%s was not set in %s of bundle %s.", args[1], layer, name)), nil
}

// checkLayer refuses a group or user that does not exist.
func (a *admin) checkLayer(c *adminCall, layer bundleconfig.Layer) error {
	var err error
	switch layer.Kind {
	case bundleconfig.Group:
		found := false
		c.facts.ReadDirectory(func(d *access.Directory) { found = d.GroupExists(layer.Name) })
		if !found {
			err = fmt.Errorf("there is no group named %s", layer.Name)
		}
	case bundleconfig.User:
		if _, ok := c.facts.UserByUsername(layer.Name); !ok {
			err = fmt.Errorf("there is no user named %s", layer.Name)
		}
	}
	return err
}

// ConfigRow is one row of `config show`: a key, its value (a secret shows
// its version only) and the layer it comes from.
type ConfigRow struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Layer string `json:"layer"`
}

// configShow lists a bundle's configuration: every layer's entries, or,
// given --room or --user, what a run there gets and from which layer,
// with the variables the bundle declares that nothing sets.
func (a *admin) configShow(c *adminCall, name string) (run.Result, error) {
	room, hasRoom, err := stringOption(c, "room")
	if err != nil {
		return run.Result{}, err
	}
	username, hasUser, err := stringOption(c, "user")
	if err != nil {
		return run.Result{}, err
	}
	var entries []bundleconfig.Entry
	if hasRoom || hasUser {
		scope := bundleconfig.Scope{Room: room}
		if hasUser {
			u, err := c.userNamed(username)
			if err != nil {
				return run.Result{}, err
			}
			scope.User, scope.Groups = u.Username, c.facts.GroupsOf(u.ID)
		}
		entries = c.facts.BundleConfig(name, scope)
	} else {
		entries = c.facts.ConfigEntries(name)
	}
	rows := []ConfigRow{}
	for _, e := range entries {
		rows = append(rows, ConfigRow{Key: e.Key, Value: entryValue(e), Layer: e.Layer.String()})
	}
	for _, env := range declaredEnv(c, name) {
		if !slices.ContainsFunc(rows, func(r ConfigRow) bool { return r.Key == env }) {
			rows = append(rows, ConfigRow{Key: env, Value: "(not set: the bundle declares it)", Layer: "-"})
		}
	}
	if len(rows) == 0 {
		return dispatch.BodyResult(fmt.Sprintf("Bundle %s has no configuration%s.", name, installedNote(c, name))), nil
	}
	v, err := json.Marshal(rows)
	if err != nil {
		return run.Result{}, err
	}
	return run.Result{Value: v}, nil
}

func entryValue(e bundleconfig.Entry) string {
	if e.Secret {
		return "[secret, version " + strconv.Itoa(e.Version) + "]"
	}
	return e.Value
}

// declaredEnv lists the variables an installed bundle's enabled (or
// newest) version declares in config.env.
func declaredEnv(c *adminCall, name string) []string {
	var names []string
	for _, ib := range c.facts.Bundles() {
		if ib.Bundle != nil && ib.Bundle.Name == name {
			for _, env := range ib.Bundle.Env {
				names = append(names, env.Name)
			}
		}
	}
	return names
}

// unsetVariables warns about each variable b declares that no layer
// sets: its commands fail until someone sets it.
func unsetVariables(c *adminCall, b *bundle.Bundle) []string {
	var lines []string
	entries := c.facts.ConfigEntries(b.Name)
	for _, env := range b.Env {
		if slices.ContainsFunc(entries, func(e bundleconfig.Entry) bool { return e.Key == env.Name }) {
			continue
		}
		lines = append(lines, fmt.Sprintf("Warning: %s has no value in any configuration layer, so its commands fail until it has one: `logbook config set %s %s=VALUE`, or `logbook secret set %s %s` for a secret.",
			env.Name, b.Name, env.Name, b.Name, env.Name))
	}
	return lines
}

func (a *admin) secret(c *adminCall) (run.Result, error) {
	if len(c.Args) > 0 && c.Args[0] == "set" {
		return run.Result{}, errors.New("a secret's value is never typed into chat, where it would be recorded with the message: run `logbook secret set BUNDLE KEY`, which reads it from standard input")
	}
	sub, args, err := subcommand(c, secretUsage, "list", "unset")
	if err != nil {
		return run.Result{}, err
	}
	if sub == "list" {
		if err := needArgs(args, 1, "secret list BUNDLE"); err != nil {
			return run.Result{}, err
		}
		rows := []ConfigRow{}
		for _, e := range c.facts.ConfigEntries(args[0]) {
			if e.Secret {
				rows = append(rows, ConfigRow{Key: e.Key, Value: entryValue(e), Layer: e.Layer.String()})
			}
		}
		if len(rows) == 0 {
			return dispatch.BodyResult(fmt.Sprintf("Bundle %s has no secrets%s.", args[0], installedNote(c, args[0]))), nil
		}
		v, err := json.Marshal(rows)
		if err != nil {
			return run.Result{}, err
		}
		return run.Result{Value: v}, nil
	}
	if err := needArgs(args, 2, "secret unset BUNDLE [--room=R | --group=G | --user=U] KEY"); err != nil {
		return run.Result{}, err
	}
	layer, err := layerOption(c)
	if err != nil {
		return run.Result{}, err
	}
	events, err := a.decideConfig(c, bundleconfig.UnsetSecret{Bundle: args[0], Layer: layer, Key: args[1]})
	if err != nil {
		return run.Result{}, err
	}
	if events == nil {
		return dispatch.BodyResult(fmt.Sprintf("%s was not a secret in %s of bundle %s.", args[1], layer, args[0])), nil
	}
	unset := events[0].(bundleconfig.SecretUnset)
	// The value goes now; should the unset not be recorded (a crash),
	// the secret reads as removed, never as still there.
	if a.cfg.Vault != nil {
		if err := a.cfg.Vault.DeleteThrough(c.ctx, bundleconfig.SecretRef{Bundle: args[0], Layer: unset.Layer, Key: args[1], Version: unset.Version}); err != nil {
			return run.Result{}, err
		}
	}
	return dispatch.BodyResult(fmt.Sprintf("Removed secret %s from %s of bundle %s; its value is deleted.", args[1], layer, args[0])), nil
}
