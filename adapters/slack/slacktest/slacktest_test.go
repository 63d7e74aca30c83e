package slacktest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A message's ts is the time it was posted, as on Slack: the adapter looks
// for a part whose post is in doubt among the messages from a minute
// before its attempt (slack.Provider.FindPart), and a ts that stayed at
// the server's start hid every part attempted more than a minute later.
func TestAMessagesTSIsTheTimeItWasPosted(t *testing.T) {
	s := New([]Channel{{ID: "C1", Name: "ops", Member: true}}, nil)
	defer s.Close()
	post := func(text string) {
		t.Helper()
		resp, err := http.PostForm(s.APIURL()+"chat.postMessage", url.Values{"channel": {"C1"}, "text": {text}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("first")
	before := time.Now().UnixMicro()
	post("second")
	after := time.Now().UnixMicro()
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("the server kept %d messages, want 2", len(msgs))
	}
	micros := func(ts string) int64 {
		sec, frac, _ := strings.Cut(ts, ".")
		whole, err1 := strconv.ParseInt(sec, 10, 64)
		part, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil || len(frac) != 6 {
			t.Fatalf("ts %q is not seconds and six digits of microseconds", ts)
		}
		return whole*1_000_000 + part
	}
	second := micros(msgs[1].TS)
	if second < before || second > after {
		t.Fatalf("the second message's ts %s is not between %d and %d µs, when it was posted", msgs[1].TS, before, after)
	}
	if first := micros(msgs[0].TS); first >= second {
		t.Fatalf("ts %s then %s: not increasing", msgs[0].TS, msgs[1].TS)
	}
}
