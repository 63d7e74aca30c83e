package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/logbookhq/logbook/adapters/natsbus"
)

// composeFile is the part of deploy/compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
}

// deploy/compose.yaml runs two servers on one PostgreSQL and executors on
// NATS, each with a health check, with settings the binary knows; and
// deploy/nats.conf confines each executor to the subjects it needs.
func TestTheComposeDeploymentHangsTogether(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose composeFile
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var servers, executors []string
	databases := map[string]bool{}
	for name, s := range compose.Services {
		for key := range s.Environment {
			if strings.HasPrefix(key, "LOGBOOK_") && !strings.HasPrefix(key, "LOGBOOK_NATS_") && !strings.Contains(string(readme), "`"+key+"`") {
				t.Errorf("%s sets %s, which the README does not document", name, key)
			}
		}
		switch {
		case slices.Equal(s.Command, []string{"serve"}):
			servers = append(servers, name)
			databases[s.Environment["LOGBOOK_DATABASE_URL"]] = true
			if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, "health") {
				t.Errorf("server %s has no health check by `logbook health`", name)
			}
			if s.Environment["LOGBOOK_BUS_URL"] == "" {
				t.Errorf("server %s is not on the NATS bus: its executors would never get a run", name)
			}
		case slices.Equal(s.Command, []string{"executor"}):
			executors = append(executors, name)
			if s.Environment["LOGBOOK_DATABASE_URL"] != "" {
				t.Errorf("executor %s has database credentials; it must reach the log only through NATS", name)
			}
			if !slices.Contains(s.Volumes, "/var/run/docker.sock:/var/run/docker.sock") {
				t.Errorf("executor %s has no Docker socket to run commands with", name)
			}
		case name == "postgres":
			if s.Healthcheck == nil {
				t.Errorf("postgres has no health check; the servers wait for it")
			}
		}
	}
	if len(servers) < 2 || len(databases) != 1 {
		t.Errorf("servers %v on databases %v: want two or more on one", servers, databases)
	}
	if len(executors) < 2 {
		t.Errorf("executors %v: want two or more", executors)
	}

	conf, err := os.ReadFile("../../deploy/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	users := natsUsers(string(conf))
	for _, name := range executors {
		env := compose.Services[name].Environment
		id, groups := env["LOGBOOK_EXECUTOR_ID"], strings.Split(env["LOGBOOK_EXECUTOR_GROUPS"], ",")
		if env["LOGBOOK_BUS_USER"] != id {
			t.Errorf("executor %s connects as %q, not as its id %q", name, env["LOGBOOK_BUS_USER"], id)
		}
		pub, sub := natsbus.ExecutorPermissions(id, groups)
		got, ok := users[id]
		switch {
		case !ok:
			t.Errorf("deploy/nats.conf has no user %s", id)
		case !slices.Equal(got.publish, pub) || !slices.Equal(got.subscribe, sub):
			t.Errorf("deploy/nats.conf lets %s publish %v and subscribe %v; natsbus.ExecutorPermissions says %v and %v", id, got.publish, got.subscribe, pub, sub)
		}
	}
}

type natsPermissions struct{ publish, subscribe []string }

var (
	natsUser  = regexp.MustCompile(`\{user: ([\w-]+),`)
	natsAllow = regexp.MustCompile(`(publish|subscribe): \{allow: \[([^\]]*)\]\}`)
)

// natsUsers reads the users of a nats.conf written one user per block,
// as deploy/nats.conf is.
func natsUsers(conf string) map[string]natsPermissions {
	users := map[string]natsPermissions{}
	for _, block := range strings.Split(conf, "{user: ")[1:] {
		block = "{user: " + block
		m := natsUser.FindStringSubmatch(block)
		if m == nil {
			continue
		}
		var p natsPermissions
		for _, allow := range natsAllow.FindAllStringSubmatch(block, -1) {
			var subjects []string
			for _, s := range strings.Split(allow[2], ",") {
				subjects = append(subjects, strings.Trim(strings.TrimSpace(s), `"`))
			}
			if allow[1] == "publish" {
				p.publish = subjects
			} else {
				p.subscribe = subjects
			}
		}
		users[m[1]] = p
	}
	return users
}
