package access

import "testing"

func TestCreateUser(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name: "creating a new user records UserCreated with the email",
			when: CreateUser{ID: "u-alice", Username: "alice", Email: "alice@example.com"},
			then: evs(UserCreated{User: "u-alice", Username: "alice", Email: "alice@example.com"}),
		},
		{
			name: "creating a user without an email records none",
			when: CreateUser{ID: "u-bob", Username: "bob"},
			then: evs(UserCreated{User: "u-bob", Username: "bob"}),
		},
		{
			name:  "creating a user whose id exists is refused",
			given: alice,
			when:  CreateUser{ID: "u-alice", Username: "alice2"},
			err:   KindAlreadyExists, msg: "user u-alice already exists with username alice",
		},
		{
			name:  "creating a user with a username someone else has is refused",
			given: alice,
			when:  CreateUser{ID: "u-other", Username: "alice"},
			err:   KindAlreadyExists, msg: "username alice is already taken by user u-alice",
		},
		{
			name: "a username with an uppercase letter is invalid",
			when: CreateUser{ID: "u-alice", Username: "Alice"},
			err:  KindInvalid, msg: `username "Alice" has the uppercase letter 'A' at column 1`,
		},
		{
			name: "an empty username is invalid",
			when: CreateUser{ID: "u-alice"},
			err:  KindInvalid, msg: "username is empty",
		},
		{
			name: "an empty user id is invalid",
			when: CreateUser{Username: "alice"},
			err:  KindInvalid, msg: "user id is empty",
		},
		{
			name: "an email without an at sign is invalid",
			when: CreateUser{ID: "u-alice", Username: "alice", Email: "alice.example.com"},
			err:  KindInvalid, msg: "has no '@'",
		},
	})
}

func TestLinkChatHandle(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "linking a handle records ChatHandleLinked",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "slack", Handle: "U123"},
			then:  evs(ChatHandleLinked{User: "u-alice", Provider: "slack", Handle: "U123"}),
		},
		{
			name:  "linking the handle the user already has on that provider changes nothing",
			given: events(alice, aliceOnSlack),
			when:  LinkChatHandle{User: "u-alice", Provider: "slack", Handle: "U123"},
		},
		{
			name:  "linking a second handle on the same provider is refused",
			given: events(alice, aliceOnSlack),
			when:  LinkChatHandle{User: "u-alice", Provider: "slack", Handle: "U999"},
			err:   KindConflict, msg: "user alice already has handle U123 on slack; unlink it before linking U999",
		},
		{
			name:  "a user may have one handle on each of several providers",
			given: events(alice, aliceOnSlack),
			when:  LinkChatHandle{User: "u-alice", Provider: "irc", Handle: "alice"},
			then:  evs(ChatHandleLinked{User: "u-alice", Provider: "irc", Handle: "alice"}),
		},
		{
			name:  "linking a handle another user holds on the same provider is refused",
			given: events(alice, aliceOnSlack, bob),
			when:  LinkChatHandle{User: "u-bob", Provider: "slack", Handle: "U123"},
			err:   KindConflict, msg: "handle U123 on slack is already linked to user alice",
		},
		{
			name:  "the same handle on another provider can belong to another user",
			given: events(alice, aliceOnSlack, bob),
			when:  LinkChatHandle{User: "u-bob", Provider: "irc", Handle: "U123"},
			then:  evs(ChatHandleLinked{User: "u-bob", Provider: "irc", Handle: "U123"}),
		},
		{
			name:  "handles differing only in case are different handles",
			given: events(alice, aliceOnSlack, bob),
			when:  LinkChatHandle{User: "u-bob", Provider: "slack", Handle: "u123"},
			then:  evs(ChatHandleLinked{User: "u-bob", Provider: "slack", Handle: "u123"}),
		},
		{
			name: "a handle freed by unlinking can be linked to another user",
			given: events(alice, aliceOnSlack, bob,
				evs(ChatHandleUnlinked{User: "u-alice", Provider: "slack", Handle: "U123"})),
			when: LinkChatHandle{User: "u-bob", Provider: "slack", Handle: "U123"},
			then: evs(ChatHandleLinked{User: "u-bob", Provider: "slack", Handle: "U123"}),
		},
		{
			name: "linking a handle to a user who does not exist is refused",
			when: LinkChatHandle{User: "u-nobody", Provider: "slack", Handle: "U123"},
			err:  KindNotFound, msg: "user u-nobody does not exist",
		},
		{
			name:  "an empty handle is invalid",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "slack"},
			err:   KindInvalid, msg: "chat handle is empty",
		},
		{
			name:  "a handle with a space is invalid",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "slack", Handle: "U1 23"},
			err:   KindInvalid, msg: "whitespace ' ' at column 3",
		},
		{
			name:  "a provider name with uppercase letters is invalid",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "Slack", Handle: "U123"},
			err:   KindInvalid, msg: `chat provider "Slack"`,
		},
		{
			name:  "a provider this build does not have is refused",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "teams", Handle: "U123"},
			err:   KindInvalid, msg: `chat provider "teams" takes no linked handles; expected one of irc, slack`,
		},
		{
			name:  "a handle with a right-to-left override is refused",
			given: alice,
			when:  LinkChatHandle{User: "u-alice", Provider: "irc", Handle: "alice\u202enimda"},
			err:   KindInvalid, msg: "U+202E at column 6",
		},
	})
}

func TestUnlinkChatHandle(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "unlinking records which handle was freed",
			given: events(alice, aliceOnSlack),
			when:  UnlinkChatHandle{User: "u-alice", Provider: "slack"},
			then:  evs(ChatHandleUnlinked{User: "u-alice", Provider: "slack", Handle: "U123"}),
		},
		{
			name:  "unlinking a provider the user has no handle on changes nothing",
			given: events(alice, aliceOnSlack),
			when:  UnlinkChatHandle{User: "u-alice", Provider: "irc"},
		},
		{
			name:  "unlinking twice changes nothing the second time",
			given: events(alice, aliceOnSlack, evs(ChatHandleUnlinked{User: "u-alice", Provider: "slack", Handle: "U123"})),
			when:  UnlinkChatHandle{User: "u-alice", Provider: "slack"},
		},
		{
			name: "unlinking for a user who does not exist is refused",
			when: UnlinkChatHandle{User: "u-nobody", Provider: "slack"},
			err:  KindNotFound, msg: "user u-nobody does not exist",
		},
	})
}

func TestDisableUser(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "disabling a user records UserDisabled",
			given: alice,
			when:  DisableUser{User: "u-alice"},
			then:  evs(UserDisabled{User: "u-alice"}),
		},
		{
			name:  "disabling a disabled user changes nothing",
			given: events(alice, disabled("u-alice")),
			when:  DisableUser{User: "u-alice"},
		},
		{
			name:  "disabling the only admin is refused",
			given: events(alice, adminGroup, member(AdminGroup, "u-alice")),
			when:  DisableUser{User: "u-alice"},
			err:   KindConflict, msg: "user alice is the last enabled member of the admin group",
		},
		{
			name:  "disabling the last enabled admin is refused even when disabled admins remain",
			given: events(alice, bob, adminGroup, member(AdminGroup, "u-alice"), member(AdminGroup, "u-bob"), disabled("u-bob")),
			when:  DisableUser{User: "u-alice"},
			err:   KindConflict, msg: "add or enable another admin first",
		},
		{
			name:  "disabling an admin while another enabled admin remains works",
			given: events(alice, bob, adminGroup, member(AdminGroup, "u-alice"), member(AdminGroup, "u-bob")),
			when:  DisableUser{User: "u-alice"},
			then:  evs(UserDisabled{User: "u-alice"}),
		},
		{
			name:  "disabling the only member of an ordinary group works",
			given: events(alice, opsGroup, member("ops", "u-alice")),
			when:  DisableUser{User: "u-alice"},
			then:  evs(UserDisabled{User: "u-alice"}),
		},
		{
			name: "disabling a user who does not exist is refused",
			when: DisableUser{User: "u-nobody"},
			err:  KindNotFound, msg: "user u-nobody does not exist",
		},
	})
}

func TestEnableUser(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "enabling a disabled user records UserEnabled",
			given: events(alice, disabled("u-alice")),
			when:  EnableUser{User: "u-alice"},
			then:  evs(UserEnabled{User: "u-alice"}),
		},
		{
			name:  "enabling an enabled user changes nothing",
			given: alice,
			when:  EnableUser{User: "u-alice"},
		},
		{
			name: "enabling a user who does not exist is refused",
			when: EnableUser{User: "u-nobody"},
			err:  KindNotFound, msg: "user u-nobody does not exist",
		},
	})
}
