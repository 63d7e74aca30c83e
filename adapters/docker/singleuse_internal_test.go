package docker

import "testing"

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
