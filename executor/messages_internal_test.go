package executor

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// groupOf is one event message with the given metadata value and payload,
// as a group of NewRunEventsMessage holds it.
func groupOf(value string, payload []byte) []*message.Message {
	m := message.NewMessage("0190d6a0-0000-7000-8000-000000000001", payload)
	m.Metadata.Set(metaStream, "run-r1")
	m.Metadata.Set(metaVersion, "1")
	m.Metadata.Set(metaActor, value)
	return []*message.Message{m}
}

// decodedGroup reads a group's payload as a broker's copy of it would be
// read: json.Unmarshal, nothing carried.
func decodedGroup(t testing.TB, payload []byte) []groupedEvent {
	t.Helper()
	var got []groupedEvent
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("the group's payload %q is not JSON: %v", payload, err)
	}
	return got
}

// Given events whose metadata holds what JSON must escape, when a group is
// written, then it reads back exactly as json.Marshal's encoding of the
// same events does.
func TestAGroupIsWrittenAsJSONMarshalWouldWriteIt(t *testing.T) {
	for _, value := range []string{"alice", `a "quoted" \\ name`, "tab\there\nnew line\x00\x1f", "héllo ☃ \u2028", "bad \xff\xfe utf-8", ""} {
		for _, payload := range [][]byte{[]byte(`{"seq":1}`), {}, nil, {0, 1, 2, 250}} {
			msgs := groupOf(value, payload)
			want, err := json.Marshal([]groupedEvent{{UUID: msgs[0].UUID, Metadata: msgs[0].Metadata, Payload: msgs[0].Payload}})
			if err != nil {
				t.Fatal(err)
			}
			if got, wantDecoded := decodedGroup(t, appendGroupJSON(nil, msgs)), decodedGroup(t, want); !reflect.DeepEqual(got, wantDecoded) {
				t.Errorf("value %q, payload %q: read back %+v, json.Marshal's reads %+v", value, payload, got, wantDecoded)
			}
		}
	}
}

// FuzzGroupJSON: whatever a metadata value and payload hold, a group's
// payload is JSON and reads back as json.Marshal's encoding does.
func FuzzGroupJSON(f *testing.F) {
	f.Add("alice", []byte(`{"seq":1}`))
	f.Add("\"\\\x00\xff", []byte{0xff})
	f.Fuzz(func(t *testing.T, value string, payload []byte) {
		msgs := groupOf(value, payload)
		written := appendGroupJSON(nil, msgs)
		if !json.Valid(written) {
			t.Fatalf("not JSON: %q", written)
		}
		want, err := json.Marshal([]groupedEvent{{UUID: msgs[0].UUID, Metadata: msgs[0].Metadata, Payload: msgs[0].Payload}})
		if err != nil {
			t.Fatal(err)
		}
		if got, wantDecoded := decodedGroup(t, written), decodedGroup(t, want); !reflect.DeepEqual(got, wantDecoded) {
			t.Fatalf("read back %+v, json.Marshal's reads %+v", got, wantDecoded)
		}
	})
}

// BenchmarkGroupJSON: a warm run's last events (its output, its end) as a
// group's payload, written directly and by json.Marshal.
func BenchmarkGroupJSON(b *testing.B) {
	var msgs []*message.Message
	for v, payload := range []string{`{"seq":1,"stream":"stdout","bytes":"aGkK","at":"2026-12-08T01:00:00Z"}`, `{"exit_code":0,"duration_ms":3}`, `{"result":{"value":[{"body":["hi"]}]}}`} {
		m := groupOf("executor", []byte(payload))[0]
		m.Metadata.Set(metaVersion, string(rune('1'+v)))
		m.Metadata.Set(metaCorrelation, "0190d6a0-0000-5000-8000-00000000000a")
		m.Metadata.Set(metaCausation, "0190d6a0-0000-5000-8000-00000000000b")
		m.Metadata.Set(metaType, "OutputChunk")
		msgs = append(msgs, m)
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewRunEventsMessage(msgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := consecutiveEvents(msgs); err != nil {
				b.Fatal(err)
			}
			grouped := make([]groupedEvent, len(msgs))
			for i, m := range msgs {
				grouped[i] = groupedEvent{UUID: m.UUID, Metadata: m.Metadata, Payload: m.Payload}
			}
			payload, err := json.Marshal(grouped)
			if err != nil {
				b.Fatal(err)
			}
			_ = message.NewMessage(msgs[0].UUID+"+3", payload)
		}
	})
}
