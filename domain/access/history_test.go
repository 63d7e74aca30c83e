package access

import (
	"strings"
	"testing"
)

func TestHistoryIsReadableByItsOwnerOrWithReadHistory(t *testing.T) {
	t.Parallel()
	bob := HistoryReader{Username: "bob", Permissions: []string{"logbook:manage_users", "logbook:admin"}}
	auditor := HistoryReader{Username: "ann", Permissions: []string{PermReadHistory}}
	for _, c := range []struct {
		name   string
		reader HistoryReader
		owner  string
		want   bool
	}{
		{"a user reads their own", bob, "bob", true},
		{"a user without the permission cannot read another's", bob, "admin", false},
		{"a user without the permission cannot read an unknown sender's", bob, "", false},
		{"a reader with no username reads no unknown sender's", HistoryReader{}, "", false},
		{"the permission reads another's", auditor, "admin", true},
		{"the permission reads an unknown sender's", auditor, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.reader.MayRead(c.owner); got != c.want {
				t.Fatalf("MayRead(%q) = %v, want %v", c.owner, got, c.want)
			}
		})
	}
}

func TestAListIsTheReadersOwnUnlessTheyMayReadEveryones(t *testing.T) {
	t.Parallel()
	bob := HistoryReader{Username: "bob"}
	auditor := HistoryReader{Username: "ann", Permissions: []string{PermReadHistory}}
	for _, c := range []struct {
		name   string
		reader HistoryReader
		asked  string
		want   string
	}{
		{"no filter is the reader's own", bob, "", "bob"},
		{"their own name is their own", bob, "bob", "bob"},
		{"no filter with the permission is everyone's", auditor, "", ""},
		{"another's with the permission is theirs", auditor, "bob", "bob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.reader.ListFilter(c.asked)
			if err != nil || got != c.want {
				t.Fatalf("ListFilter(%q) = %q, %v; want %q", c.asked, got, err, c.want)
			}
		})
	}
	_, err := bob.ListFilter("admin")
	if KindOf(err) != KindForbidden || !strings.Contains(err.Error(), "admin's history needs the logbook:read_history permission") {
		t.Fatalf("bob listing admin's history: %v (kind %v)", err, KindOf(err))
	}
}
