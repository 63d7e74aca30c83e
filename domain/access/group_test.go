package access

import "testing"

func TestCreateGroup(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name: "creating a new group records GroupCreated",
			when: CreateGroup{Name: "ops"},
			then: evs(GroupCreated{Group: "ops"}),
		},
		{
			name: "the admin group is created like any other",
			when: CreateGroup{Name: AdminGroup},
			then: evs(GroupCreated{Group: "admin"}),
		},
		{
			name:  "creating a group that exists is refused",
			given: opsGroup,
			when:  CreateGroup{Name: "ops"},
			err:   KindAlreadyExists, msg: "group ops already exists",
		},
		{
			name: "a group name starting with a dash is invalid",
			when: CreateGroup{Name: "-ops"},
			err:  KindInvalid, msg: `group name "-ops" starts with '-' at column 1`,
		},
	})
}

func TestAddMember(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "adding a user to a group records MemberAdded",
			given: events(alice, opsGroup),
			when:  AddMember{Group: "ops", User: "u-alice"},
			then:  evs(MemberAdded{Group: "ops", User: "u-alice"}),
		},
		{
			name:  "adding an existing member changes nothing",
			given: events(alice, opsGroup, member("ops", "u-alice")),
			when:  AddMember{Group: "ops", User: "u-alice"},
		},
		{
			name:  "a disabled user can be added to a group",
			given: events(alice, disabled("u-alice"), opsGroup),
			when:  AddMember{Group: "ops", User: "u-alice"},
			then:  evs(MemberAdded{Group: "ops", User: "u-alice"}),
		},
		{
			name:  "adding a user who does not exist is refused",
			given: opsGroup,
			when:  AddMember{Group: "ops", User: "u-nobody"},
			err:   KindNotFound, msg: "user u-nobody does not exist",
		},
		{
			name:  "adding to a group that does not exist is refused",
			given: alice,
			when:  AddMember{Group: "ops", User: "u-alice"},
			err:   KindNotFound, msg: "group ops does not exist",
		},
		{
			name:  "a malformed user id is invalid",
			given: opsGroup,
			when:  AddMember{Group: "ops", User: "U Alice"},
			err:   KindInvalid, msg: "user id",
		},
	})
}

func TestRemoveMember(t *testing.T) {
	t.Parallel()
	twoAdmins := events(alice, bob, adminGroup, member(AdminGroup, "u-alice"), member(AdminGroup, "u-bob"))
	runScenarios(t, []gwt{
		{
			name:  "removing a member records MemberRemoved",
			given: events(alice, opsGroup, member("ops", "u-alice")),
			when:  RemoveMember{Group: "ops", User: "u-alice"},
			then:  evs(MemberRemoved{Group: "ops", User: "u-alice"}),
		},
		{
			name:  "removing the last member of an ordinary group works",
			given: events(alice, opsGroup, member("ops", "u-alice")),
			when:  RemoveMember{Group: "ops", User: "u-alice"},
			then:  evs(MemberRemoved{Group: "ops", User: "u-alice"}),
		},
		{
			name:  "removing a user who is not a member changes nothing",
			given: events(alice, opsGroup),
			when:  RemoveMember{Group: "ops", User: "u-alice"},
		},
		{
			name:  "removing the last member of admin is refused",
			given: events(alice, adminGroup, member(AdminGroup, "u-alice")),
			when:  RemoveMember{Group: AdminGroup, User: "u-alice"},
			err:   KindConflict, msg: "user alice is the last member of the admin group",
		},
		{
			name:  "removing the last member of admin is refused even when that member is disabled",
			given: events(alice, adminGroup, member(AdminGroup, "u-alice"), disabled("u-alice")),
			when:  RemoveMember{Group: AdminGroup, User: "u-alice"},
			err:   KindConflict, msg: "last member of the admin group",
		},
		{
			name:  "removing an admin who is not the last works",
			given: twoAdmins,
			when:  RemoveMember{Group: AdminGroup, User: "u-alice"},
			then:  evs(MemberRemoved{Group: AdminGroup, User: "u-alice"}),
		},
		{
			name:  "removing the last enabled admin is refused while a disabled admin remains",
			given: events(twoAdmins, disabled("u-bob")),
			when:  RemoveMember{Group: AdminGroup, User: "u-alice"},
			err:   KindConflict, msg: "user alice is the last enabled member of the admin group",
		},
		{
			name:  "removing a disabled admin while an enabled one remains works",
			given: events(twoAdmins, disabled("u-bob")),
			when:  RemoveMember{Group: AdminGroup, User: "u-bob"},
			then:  evs(MemberRemoved{Group: AdminGroup, User: "u-bob"}),
		},
		{
			name:  "removing a disabled admin when every admin is disabled works if others remain",
			given: events(twoAdmins, disabled("u-alice"), disabled("u-bob")),
			when:  RemoveMember{Group: AdminGroup, User: "u-alice"},
			then:  evs(MemberRemoved{Group: AdminGroup, User: "u-alice"}),
		},
		{
			name: "removing from a group that does not exist is refused",
			when: RemoveMember{Group: "ops", User: "u-alice"},
			err:  KindNotFound, msg: "group ops does not exist",
		},
	})
}

func TestGrantRoleToGroup(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "granting a role to a group records RoleGranted",
			given: events(opsGroup, deployerRole),
			when:  GrantRoleToGroup{Group: "ops", Role: "deployer"},
			then:  evs(RoleGranted{Group: "ops", Role: "deployer"}),
		},
		{
			name:  "granting a role the group already has changes nothing",
			given: events(opsGroup, deployerRole, evs(RoleGranted{Group: "ops", Role: "deployer"})),
			when:  GrantRoleToGroup{Group: "ops", Role: "deployer"},
		},
		{
			name:  "granting a role that does not exist is refused",
			given: opsGroup,
			when:  GrantRoleToGroup{Group: "ops", Role: "deployer"},
			err:   KindNotFound, msg: "role deployer does not exist",
		},
		{
			name:  "granting to a group that does not exist is refused",
			given: deployerRole,
			when:  GrantRoleToGroup{Group: "ops", Role: "deployer"},
			err:   KindNotFound, msg: "group ops does not exist",
		},
		{
			name:  "a malformed role name is invalid",
			given: opsGroup,
			when:  GrantRoleToGroup{Group: "ops", Role: "deploy er"},
			err:   KindInvalid, msg: `role name "deploy er" has whitespace ' ' at column 7`,
		},
	})
}

func TestRevokeRoleFromGroup(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name:  "revoking a granted role records RoleRevoked",
			given: events(opsGroup, deployerRole, evs(RoleGranted{Group: "ops", Role: "deployer"})),
			when:  RevokeRoleFromGroup{Group: "ops", Role: "deployer"},
			then:  evs(RoleRevoked{Group: "ops", Role: "deployer"}),
		},
		{
			name:  "revoking a role the group does not have changes nothing",
			given: events(opsGroup, deployerRole),
			when:  RevokeRoleFromGroup{Group: "ops", Role: "deployer"},
		},
		{
			name: "revoking from a group that does not exist is refused",
			when: RevokeRoleFromGroup{Group: "ops", Role: "deployer"},
			err:  KindNotFound, msg: "group ops does not exist",
		},
	})
}
