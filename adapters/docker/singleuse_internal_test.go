package docker

import (
	"slices"
	"testing"
)

// A spare's agent says nothing until it gets its request: a frame, or the
// end of its output, means the spare is gone and must not be handed out.
func TestASpareIsAliveOnlyWhileItsAgentIsSilent(t *testing.T) {
	frames := make(chan agentFrame, 1)
	c := &warmContainer{frames: frames}
	if !alive(c) {
		t.Fatal("a silent agent reads as gone")
	}
	frames <- agentFrame{typ: 'E'}
	if alive(c) {
		t.Fatal("an agent that spoke unasked reads as alive")
	}
	close(frames)
	if alive(c) {
		t.Fatal("an agent whose output ended reads as alive")
	}
}

func TestASparePoolPrimesTheExecutablesItsRunsUsedLatelyLatestFirst(t *testing.T) {
	p := &sparePool{}
	for _, path := range []string{"/bin/echo", "/bin/echo", "/bin/date", "sh", "/bin/echo", "/bin/wc", "/bin/sort", ""} {
		p.noteExecutableLocked(path)
	}
	if want := []string{"/bin/sort", "/bin/wc", "/bin/echo", "sh"}; !slices.Equal(p.executables, want) {
		t.Fatalf("executables %q, want %q: the latest first, each once, at most %d", p.executables, want, maxPrimed)
	}
}
