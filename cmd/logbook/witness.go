package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/internal/supervisor"
)

func init() { register(newWitnessCmd) }

// witnessSettings configure logbook witness: flags, else LOGBOOK_WITNESS_*.
type witnessSettings struct {
	addr, keyFile, name, state string
	logs                       []string
}

func (s *witnessSettings) register(cmd *cobra.Command, serving bool) {
	cmd.Flags().StringVar(&s.keyFile, "key-file", envOr("LOGBOOK_WITNESS_KEY_FILE", "./data/witness.key"), "the witness's signing key (made at first start, mode 0600) (LOGBOOK_WITNESS_KEY_FILE)")
	cmd.Flags().StringVar(&s.name, "name", envOr("LOGBOOK_WITNESS_NAME", "logbook-witness"), "the witness's name, for a key made at first start (LOGBOOK_WITNESS_NAME)")
	if serving {
		cmd.Flags().StringVar(&s.addr, "listen", envOr("LOGBOOK_WITNESS_ADDR", "127.0.0.1:8091"), "address to serve C2SP tlog-witness on (LOGBOOK_WITNESS_ADDR)")
		cmd.Flags().StringVar(&s.state, "state", envOr("LOGBOOK_WITNESS_STATE", "./data/witness-state.json"), "file keeping the last checkpoint cosigned per log (LOGBOOK_WITNESS_STATE)")
		cmd.Flags().StringArrayVar(&s.logs, "log", splitList(os.Getenv("LOGBOOK_WITNESS_LOGS")), "a log to witness: its verifier key, as logbook audit key prints it; repeat for each (LOGBOOK_WITNESS_LOGS, comma-separated)")
	}
}

func splitList(raw string) []string {
	var out []string
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// witnessKey reads the witness's key, making it first if it is missing.
func (s *witnessSettings) witnessKey(log zerolog.Logger) (transparency.Key, error) {
	if strings.ContainsAny(s.name, "+ \t\n") || s.name == "" {
		return transparency.Key{}, exitWith(2, "--name %q: a witness's name has no spaces or +", s.name)
	}
	created, err := transparency.EnsureKeyFile(s.keyFile, s.name)
	if err != nil {
		return transparency.Key{}, fmt.Errorf("make the witness key %s: %w", s.keyFile, err)
	}
	if created {
		log.Info().Str("key_file", s.keyFile).Msg("made the witness's key (mode 0600)")
	}
	return transparency.ReadKeyFile(s.keyFile)
}

func newWitnessCmd() *cobra.Command {
	var s witnessSettings
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness: cosign a log's checkpoints only when each is proven consistent with the last one cosigned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			log := newLogger(cfg, os.Stderr)
			return runWitness(log.WithContext(cmd.Context()), s, log)
		},
	}
	s.register(cmd, true)
	var keyOnly witnessSettings
	key := &cobra.Command{
		Use:   "key",
		Short: "Print the witness's public key as a cosignature verifier string (for --witness and LOGBOOK_WITNESSES)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := keyOnly.witnessKey(zerolog.Nop())
			if err != nil {
				return err
			}
			v, err := k.CosignatureVerifier()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	keyOnly.register(key, false)
	cmd.AddCommand(key)
	return cmd
}

// runWitness serves the witness under a supervisor until ctx ends, then
// shuts the server down cleanly (requests in flight finish, so no state
// write is cut).
func runWitness(ctx context.Context, s witnessSettings, log zerolog.Logger) error {
	key, err := s.witnessKey(log)
	if err != nil {
		return err
	}
	cosigner, err := key.Cosigner()
	if err != nil {
		return err
	}
	state, err := transparency.OpenStateFile(s.state)
	if err != nil {
		return exitWith(2, "%v", err)
	}
	witness, err := transparency.NewWitness(cosigner, s.logs, state, log)
	if err != nil {
		return exitWith(2, "%v", err)
	}
	listener, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	verifier, _ := key.CosignatureVerifier()
	server := &http.Server{Handler: witness, ReadHeaderTimeout: 10 * time.Second}
	sup := supervisor.New(supervisor.Config{Logger: log})
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	sup.Start(partsCtx, supervisor.Part{
		Name: "witness", Essential: true, StopFirst: true, StopTimeout: 10 * time.Second,
		Run: func(context.Context) error {
			log.Info().Str("url", "http://"+listener.Addr().String()).Str("key", verifier).Int("logs", len(s.logs)).Msg("witness listening")
			if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
				return supervisor.Permanent(fmt.Errorf("witness server: %w", err))
			}
			return nil
		},
		Stop: server.Shutdown,
	})
	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("witness shutting down")
	case runErr = <-sup.Fatal():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sup.Stop(stopCtx); err != nil {
		log.Error().Err(err).Msg("witness shutdown")
	}
	return runErr
}
