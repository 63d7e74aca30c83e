package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/internal/supervisor"
	"github.com/logbookhq/logbook/projections/merkletree"
)

// transparencySettings are the Merkle tree's and checkpoints' settings,
// read from the environment (LOGBOOK_CHECKPOINT_*, LOGBOOK_SIGNING_KEY_FILE,
// LOGBOOK_WITNESSES).
type transparencySettings struct {
	KeyFile  string        // LOGBOOK_SIGNING_KEY_FILE
	Origin   string        // LOGBOOK_CHECKPOINT_ORIGIN: the key's name when one is made
	Every    int64         // LOGBOOK_CHECKPOINT_EVERY (default 1000)
	Interval time.Duration // LOGBOOK_CHECKPOINT_INTERVAL (default 1m)
	File     string        // LOGBOOK_CHECKPOINT_FILE
	URL      string        // LOGBOOK_CHECKPOINT_URL
	// Witnesses (LOGBOOK_WITNESSES) are "URL KEY" pairs, comma-separated.
	Witnesses []witnessSetting
}

type witnessSetting struct{ URL, Key string }

// defaultSigningKeyFile is where the embedded default keeps the key it
// makes at first start.
const defaultSigningKeyFile = "signing.key"

func loadTransparencySettings() (transparencySettings, error) {
	s := transparencySettings{
		KeyFile: os.Getenv("LOGBOOK_SIGNING_KEY_FILE"), Origin: os.Getenv("LOGBOOK_CHECKPOINT_ORIGIN"),
		File: os.Getenv("LOGBOOK_CHECKPOINT_FILE"), URL: os.Getenv("LOGBOOK_CHECKPOINT_URL"),
		Every: 1000, Interval: time.Minute,
	}
	var errs []error
	if raw := os.Getenv("LOGBOOK_CHECKPOINT_EVERY"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("LOGBOOK_CHECKPOINT_EVERY %q is not a number of events of 1 or more", raw))
		}
		s.Every = n
	}
	if raw := os.Getenv("LOGBOOK_CHECKPOINT_INTERVAL"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("LOGBOOK_CHECKPOINT_INTERVAL %q is not a duration of a second or more, such as 1m", raw))
		}
		s.Interval = d
	}
	if s.Origin != "" && strings.ContainsAny(s.Origin, "+ \t\n") {
		errs = append(errs, fmt.Errorf("LOGBOOK_CHECKPOINT_ORIGIN %q may not hold a space or a +", s.Origin))
	}
	if s.URL != "" && !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
		errs = append(errs, fmt.Errorf("LOGBOOK_CHECKPOINT_URL %q is not an http or https URL", s.URL))
	}
	for i, entry := range strings.Split(os.Getenv("LOGBOOK_WITNESSES"), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		url, key, ok := strings.Cut(entry, " ")
		if !ok || (!strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://")) {
			errs = append(errs, fmt.Errorf("LOGBOOK_WITNESSES entry %d %q is not \"URL KEY\" (the witness's URL, a space, its key as logbook witness key prints it)", i+1, entry))
			continue
		}
		s.Witnesses = append(s.Witnesses, witnessSetting{URL: url, Key: strings.TrimSpace(key)})
	}
	return s, errors.Join(errs...)
}

// signingKeyPath says which key signs checkpoints: the setting, else on
// SQLite the one under the data directory (made at first start if create,
// mode 0600, named LOGBOOK_CHECKPOINT_ORIGIN or logbook/<store identity>),
// else none: on PostgreSQL several hosts share the database, and each
// making a key would sign one log with many.
func signingKeyPath(ctx context.Context, cfg config, s transparencySettings, store *sqlstore.Store, create bool, log zerolog.Logger) (string, error) {
	if s.KeyFile != "" {
		if _, err := os.Stat(s.KeyFile); err != nil {
			return "", fmt.Errorf("LOGBOOK_SIGNING_KEY_FILE: %w (make one with: logbook audit key --new FILE --origin NAME)", err)
		}
		return s.KeyFile, nil
	}
	kind, _, err := parseDatabaseURL(cfg.DatabaseURL, cfg.DataDir)
	if err != nil || kind != "sqlite" {
		return "", err
	}
	path := filepath.Join(cfg.DataDir, defaultSigningKeyFile)
	if !create {
		if _, err := os.Stat(path); err != nil {
			return "", nil
		}
		return path, nil
	}
	origin := s.Origin
	if origin == "" {
		id, err := store.Identity(ctx)
		if err != nil {
			return "", err
		}
		origin = "logbook/" + id
	}
	created, err := transparency.EnsureKeyFile(path, origin)
	if err != nil {
		return "", fmt.Errorf("make the signing key file %s: %w", path, err)
	}
	if created {
		log.Info().Str("key_file", path).Str("origin", origin).Msg("made the key checkpoints are signed with (mode 0600): publish its verifier (logbook audit key) and back the file up")
	}
	return path, nil
}

// startTransparency starts the tree's maintainer and, when checkpoints are
// published anywhere, the publisher, as parts of the server.
func startTransparency(ctx context.Context, sup partStarter, cfg config, store *sqlstore.Store, log zerolog.Logger) error {
	s, err := loadTransparencySettings()
	if err != nil {
		return err
	}
	mcfg := merkletree.Config{Events: store, Tree: store, Every: s.Every, Interval: s.Interval}
	path, err := signingKeyPath(ctx, cfg, s, store, true, log)
	if err != nil {
		return err
	}
	if path == "" {
		log.Warn().Msg("checkpoints are not signed: set LOGBOOK_SIGNING_KEY_FILE (on PostgreSQL no key is made for you); the Merkle tree is kept anyway")
	} else {
		key, err := transparency.ReadKeyFile(path)
		if err != nil {
			return fmt.Errorf("LOGBOOK_SIGNING_KEY_FILE: %w", err)
		}
		if mcfg.Signer, err = key.Signer(); err != nil {
			return err
		}
	}
	var destinations []merkletree.Destination
	client := &http.Client{Timeout: 30 * time.Second}
	for _, w := range s.Witnesses {
		d, err := transparency.NewWitnessDestination(w.URL, w.Key, client)
		if err != nil {
			return fmt.Errorf("LOGBOOK_WITNESSES: %w", err)
		}
		destinations = append(destinations, d)
	}
	if s.File != "" {
		destinations = append(destinations, transparency.FileDestination{Path: s.File})
	}
	if s.URL != "" {
		destinations = append(destinations, transparency.HTTPDestination{URL: s.URL, Client: client})
	}
	if len(destinations) > 0 && mcfg.Signer != nil {
		publisher := merkletree.NewPublisher(store, destinations...)
		mcfg.Signed = publisher.Notify
		sup.Start(ctx, supervisor.Part{Name: "checkpoint-publisher", Run: publisher.Run})
	}
	maintainer := merkletree.New(mcfg)
	sup.Start(ctx, supervisor.Part{Name: "merkle-tree", ReportsReady: true, Run: maintainer.Run})
	return nil
}
