package access

import "testing"

func TestCreateRole(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name: "creating a new role records RoleCreated",
			when: CreateRole{Name: "deployer"},
			then: evs(RoleCreated{Role: "deployer"}),
		},
		{
			name:  "creating a role that exists is refused",
			given: deployerRole,
			when:  CreateRole{Name: "deployer"},
			err:   KindAlreadyExists, msg: "role deployer already exists",
		},
		{
			name: "a role name longer than 64 characters is invalid",
			when: CreateRole{Name: "r0123456789012345678901234567890123456789012345678901234567890123"},
			err:  KindInvalid, msg: "too long at column 65",
		},
	})
}

func TestGrantPermission(t *testing.T) {
	t.Parallel()
	siteDeploy := evs(SitePermissionCreated{Permission: "site:deploy"})
	runScenarios(t, []gwt{
		{
			name:    "granting a permission a bundle declares records PermissionGranted",
			bundles: deployBundle,
			given:   deployerRole,
			when:    GrantPermission{Role: "deployer", Permission: "deploy:prod"},
			then:    evs(PermissionGranted{Role: "deployer", Permission: "deploy:prod"}),
		},
		{
			name:  "granting a site permission an operator created records PermissionGranted",
			given: events(deployerRole, siteDeploy),
			when:  GrantPermission{Role: "deployer", Permission: "site:deploy"},
			then:  evs(PermissionGranted{Role: "deployer", Permission: "site:deploy"}),
		},
		{
			name:    "granting a permission already granted changes nothing",
			bundles: deployBundle,
			given:   events(deployerRole, evs(PermissionGranted{Role: "deployer", Permission: "deploy:prod"})),
			when:    GrantPermission{Role: "deployer", Permission: "deploy:prod"},
		},
		{
			name:    "granting a permission no installed bundle declares is refused",
			bundles: deployBundle,
			given:   deployerRole,
			when:    GrantPermission{Role: "deployer", Permission: "deploy:everything"},
			err:     KindNotFound, msg: "permission deploy:everything does not exist: no installed bundle named deploy declares it",
		},
		{
			name:  "granting a permission of a bundle that is not installed is refused",
			given: deployerRole,
			when:  GrantPermission{Role: "deployer", Permission: "deploy:prod"},
			err:   KindNotFound, msg: "permission deploy:prod does not exist",
		},
		{
			name:  "granting a site permission nobody created is refused",
			given: deployerRole,
			when:  GrantPermission{Role: "deployer", Permission: "site:deploy"},
			err:   KindNotFound, msg: "permission site:deploy does not exist; create it as a site permission first",
		},
		{
			name:    "granting to a role that does not exist is refused",
			bundles: deployBundle,
			when:    GrantPermission{Role: "deployer", Permission: "deploy:prod"},
			err:     KindNotFound, msg: "role deployer does not exist",
		},
		{
			name:  "a permission without a namespace is invalid",
			given: deployerRole,
			when:  GrantPermission{Role: "deployer", Permission: "prod"},
			err:   KindInvalid, msg: `permission "prod" has no namespace`,
		},
	})
}

func TestRevokePermission(t *testing.T) {
	t.Parallel()
	granted := events(deployerRole, evs(PermissionGranted{Role: "deployer", Permission: "deploy:prod"}))
	runScenarios(t, []gwt{
		{
			name:    "revoking a granted permission records PermissionRevoked",
			bundles: deployBundle,
			given:   granted,
			when:    RevokePermission{Role: "deployer", Permission: "deploy:prod"},
			then:    evs(PermissionRevoked{Role: "deployer", Permission: "deploy:prod"}),
		},
		{
			name:  "revoking a grant whose bundle was removed still works",
			given: granted,
			when:  RevokePermission{Role: "deployer", Permission: "deploy:prod"},
			then:  evs(PermissionRevoked{Role: "deployer", Permission: "deploy:prod"}),
		},
		{
			name:    "revoking a permission the role does not have changes nothing",
			bundles: deployBundle,
			given:   deployerRole,
			when:    RevokePermission{Role: "deployer", Permission: "deploy:prod"},
		},
		{
			name: "revoking from a role that does not exist is refused",
			when: RevokePermission{Role: "deployer", Permission: "deploy:prod"},
			err:  KindNotFound, msg: "role deployer does not exist",
		},
		{
			name:  "a malformed permission is invalid",
			given: deployerRole,
			when:  RevokePermission{Role: "deployer", Permission: "deploy:Prod"},
			err:   KindInvalid, msg: "column 8",
		},
	})
}

func TestCreateSitePermission(t *testing.T) {
	t.Parallel()
	runScenarios(t, []gwt{
		{
			name: "creating a site permission records SitePermissionCreated",
			when: CreateSitePermission{Name: "site:deploy"},
			then: evs(SitePermissionCreated{Permission: "site:deploy"}),
		},
		{
			name: "a bare name is created in the site namespace",
			when: CreateSitePermission{Name: "deploy"},
			then: evs(SitePermissionCreated{Permission: "site:deploy"}),
		},
		{
			name:  "creating a site permission that exists is refused",
			given: evs(SitePermissionCreated{Permission: "site:deploy"}),
			when:  CreateSitePermission{Name: "deploy"},
			err:   KindAlreadyExists, msg: "permission site:deploy already exists",
		},
		{
			name: "creating a permission in a bundle's namespace is refused",
			when: CreateSitePermission{Name: "deploy:prod"},
			err:  KindInvalid, msg: "expected site:prod",
		},
		{
			name: "a malformed name is invalid",
			when: CreateSitePermission{Name: "site:de ploy"},
			err:  KindInvalid, msg: "column 8",
		},
	})
}
