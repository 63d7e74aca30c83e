package docker_test

import (
	"os"
	"testing"

	"github.com/logbookhq/logbook/adapters/docker"
)

// The agent is bind-mounted only when the daemon runs on this very host:
// on a local socket, calling itself by this host's name. A Logbook in a
// container (another name), a remote daemon, or a daemon that did not say
// its name gets the volume.
func TestTheAgentIsBindMountedOnlyFromTheDaemonsOwnHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		daemonHost, daemonName, want string
	}{
		{"unix:///var/run/docker.sock", host, docker.AgentBind},
		{"", host, docker.AgentBind},
		{"unix:///var/run/docker.sock", host + "-not", docker.AgentVolume},
		{"unix:///var/run/docker.sock", "", docker.AgentVolume},
		{"tcp://10.0.0.5:2376", host, docker.AgentVolume},
	}
	for _, tt := range tests {
		if got := docker.DefaultAgentMount(tt.daemonHost, tt.daemonName); got != tt.want {
			t.Errorf("daemon %q named %q: %s, want %s", tt.daemonHost, tt.daemonName, got, tt.want)
		}
	}
}
