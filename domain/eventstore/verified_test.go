package eventstore_test

import (
	"reflect"
	"testing"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// A recorded verification keeps its name and every field of the report.
func TestChainVerifiedRoundTrips(t *testing.T) {
	v := eventstore.ChainVerified{VerifyReport: eventstore.VerifyReport{Checked: 10, Head: 10, HeadHash: "ab", OK: false, FirstBad: 7, Problem: "hash does not match"}, DurationMS: 3}
	ne := domain.MustEncode(v, domain.Metadata{Actor: "admin"})
	if ne.Type != "ChainVerified" || string(ne.Data) != `{"checked":10,"head":10,"head_hash":"ab","ok":false,"first_bad_position":7,"problem":"hash does not match","duration_ms":3}` {
		t.Fatalf("encoded as %s %s", ne.Type, ne.Data)
	}
	back, err := domain.Decode(domain.RecordedEvent{Type: ne.Type, Data: ne.Data})
	if err != nil || !reflect.DeepEqual(back, domain.Payload(v)) {
		t.Fatalf("decoded %#v (%v)", back, err)
	}
}
