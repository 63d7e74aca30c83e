package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/logbookhq/logbook/domain"
)

type parcelShipped struct {
	Parcel string `json:"parcel"`
	Weight int    `json:"weight"`
}

func (parcelShipped) EventType() string { return "ParcelShipped" }

type parcelShippedImpostor struct{}

func (parcelShippedImpostor) EventType() string { return "ParcelShipped" }

func init() { domain.Register[parcelShipped]() }

func TestDecodeReturnsTheRegisteredType(t *testing.T) {
	t.Parallel()
	e, err := domain.Encode(parcelShipped{Parcel: "p-1", Weight: 3}, domain.Metadata{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := domain.Decode(domain.RecordedEvent{Type: e.Type, Data: e.Data})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := got.(parcelShipped); !ok || p.Parcel != "p-1" || p.Weight != 3 {
		t.Fatalf("decoded %#v, want parcelShipped{p-1, 3}", got)
	}
}

func TestDecodeKeepsAnUnknownTypeRaw(t *testing.T) {
	t.Parallel()
	data := json.RawMessage(`{"from":"a future build"}`)
	got, err := domain.Decode(domain.RecordedEvent{Type: "SomethingNew", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := got.(domain.Raw)
	if !ok || raw.Type != "SomethingNew" || string(raw.Data) != string(data) || raw.EventType() != "SomethingNew" {
		t.Fatalf("decoded %#v, want domain.Raw with the type and bytes", got)
	}
}

func TestDecodeReportsDataThatDoesNotFitTheType(t *testing.T) {
	t.Parallel()
	_, err := domain.Decode(domain.RecordedEvent{Type: "ParcelShipped", Position: 7, Data: json.RawMessage(`{"weight":"heavy"}`)})
	if err == nil {
		t.Fatal("decoding a string into an int field succeeded")
	}
	if want := "decode ParcelShipped at position 7"; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Fatalf("error %q does not say which event", err)
	}
}

func TestRegisteringTwoTypesUnderOneNamePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("registering a second Go type as ParcelShipped did not panic")
		}
	}()
	domain.Register[parcelShippedImpostor]()
}

func TestEncodeAssignsTimeOrderedIDs(t *testing.T) {
	t.Parallel()
	a := domain.MustEncode(parcelShipped{}, domain.Metadata{})
	b := domain.MustEncode(parcelShipped{}, domain.Metadata{})
	if a.ID.Version() != 7 || a.ID == b.ID || a.ID.String() >= b.ID.String() {
		t.Fatalf("ids %s then %s are not increasing UUIDv7s", a.ID, b.ID)
	}
	if a.Type != "ParcelShipped" {
		t.Fatalf("type = %q", a.Type)
	}
}

func TestMetadataDecodesFromStoredBytes(t *testing.T) {
	t.Parallel()
	e := domain.RecordedEvent{RawMetadata: json.RawMessage(`{"correlation_id":"r-1","causation_id":"e-1","actor":"bob","extra":1}`)}
	if md := e.Metadata(); md != (domain.Metadata{CorrelationID: "r-1", CausationID: "e-1", Actor: "bob"}) {
		t.Fatalf("metadata = %+v", md)
	}
}
