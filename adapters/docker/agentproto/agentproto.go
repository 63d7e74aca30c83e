// Package agentproto is the framed protocol between the docker runtime and
// logbook-agent, the small static program that forks commands inside a warm
// container. It carries both directions over the container's attached stdio.
// It uses only the standard library, so the agent stays small.
//
// A frame is one type byte, a 4-byte big-endian payload length, and the
// payload. Host to agent: Request (JSON), then Stdin (raw bytes), and Kill to
// stop the running command. Agent to host: Ready once at start, then per
// invocation Started (or straight to Exit when the command cannot start),
// Stdout and Stderr (raw bytes), Exit (JSON) as soon as the command and
// every process it started have ended, and Clean (JSON) once the agent has
// removed what the run left and checked the container is as it was. An
// agent started with OneRunArg (a single-use container) answers one
// Request, sends no Clean and ends after the Exit.
package agentproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame types.
const (
	Request byte = 'R'
	Stdin   byte = 'I'
	Kill    byte = 'K'
	Ready   byte = 'Y'
	Started byte = 'S'
	Stdout  byte = 'O'
	Stderr  byte = 'E'
	Exit    byte = 'X'
	Clean   byte = 'C'
)

// OneRunArg is the agent's argument in a single-use container: one run,
// then the agent ends and the container with it.
const OneRunArg = "--one-run"

// PrimeArg, followed by a path, asks the agent to read that file before
// it says Ready, so that the command's first exec in a new container finds
// it cached (the host passes the executables its pool ran lately). Given
// once per path; anything that cannot be read is skipped.
const PrimeArg = "--prime="

// MaxFrame bounds one frame's payload; larger output is split by the writer.
const MaxFrame = 1 << 20

// ErrFrame is the kind of a malformed frame.
var ErrFrame = errors.New("malformed agent frame")

// RequestBody asks the agent to run one command.
type RequestBody struct {
	Argv        []string `json:"argv"`
	Env         []string `json:"env"`
	TimeoutMS   int64    `json:"timeout_ms"`
	KillGraceMS int64    `json:"kill_grace_ms"`
	// UID and GID are who the command runs as. The agent refuses uid 0,
	// its own: a command with the agent's uid could reach the agent.
	UID int64 `json:"uid"`
	GID int64 `json:"gid"`
}

// ExitBody says how a command ended.
type ExitBody struct {
	ExitCode   int    `json:"exit_code"`
	Signal     string `json:"signal,omitempty"`
	TimedOut   bool   `json:"timed_out,omitempty"`
	Stopped    bool   `json:"stopped,omitempty"` // by a Kill frame
	DurationUS int64  `json:"duration_us"`
	// StartError is set when the command could not be started at all.
	StartError string `json:"start_error,omitempty"`
}

// CleanBody says whether the container is as it was before the run: no
// process of the run left, its writable mounts and IPC objects as they were.
// A container that is not is retired, never given another run.
type CleanBody struct {
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"` // what was left, when not OK
}

// Writer writes frames; safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends one frame, splitting payloads over MaxFrame.
func (fw *Writer) Write(typ byte, payload []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for first := true; first || len(payload) > 0; first = false {
		part := payload[:min(len(payload), MaxFrame)]
		payload = payload[len(part):]
		var hdr [5]byte
		hdr[0] = typ
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(part)))
		if _, err := fw.w.Write(append(hdr[:], part...)); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON sends a frame whose payload is v as JSON.
func (fw *Writer) WriteJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fw.Write(typ, b)
}

// Reader reads frames.
type Reader struct{ r *bufio.Reader }

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Next returns the next frame. The payload is freshly allocated. At a clean
// end of input it returns io.EOF.
func (fr *Reader) Next() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: input ended inside a frame header", ErrFrame)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: frame %q declares %d bytes, over the %d limit", ErrFrame, hdr[0], n, MaxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return 0, nil, fmt.Errorf("%w: input ended inside a %d-byte %q frame", ErrFrame, n, hdr[0])
	}
	return hdr[0], payload, nil
}
