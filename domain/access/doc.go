// Package access decides who Logbook's users are and what they may do:
// users with at most one chat handle per provider, groups of users, roles
// granted to groups, and namespaced permissions granted to roles. It is pure:
// no I/O, only deciders and a read model.
//
// Each aggregate is an event-sourced decider over its own stream:
//
//	user-<id>                 User            CreateUser, LinkChatHandle, UnlinkChatHandle, DisableUser, EnableUser
//	group-<name>              Group           CreateGroup, AddMember, RemoveMember, GrantRoleToGroup, RevokeRoleFromGroup
//	role-<name>               Role            CreateRole, GrantPermission, RevokePermission
//	permission-site:<name>    SitePermission  CreateSitePermission
//
// EvolveX(state, event) rebuilds state from the stream; DecideX(state,
// command, facts) returns the new events or an *Error with a kind. Decide
// does both for any command given the stream's history.
//
// Invariants that span aggregates are checked against Facts, which
// *Directory provides: a handle belongs to at most one user per provider,
// usernames are unique, only users and roles that exist can be added or
// granted, only permissions that exist can be granted, and the admin group
// keeps at least one member and, once it has one, at least one enabled
// member (so neither RemoveMember nor DisableUser can lock everyone out).
//
// Permissions exist in two ways. Operators create "site:<name>" permissions
// with CreateSitePermission. Bundles declare "<bundle>:<name>" permissions in
// their config; the projection that folds domain/bundle's BundleInstalled
// events calls Directory.DeclarePermissions with them, and
// Directory.RetractPermissions when a bundle is removed, so that this
// package need not import the bundle package.
//
// Adding what is already there and removing what is not succeed with no
// events, so a retried or repeated command is harmless; creating what
// already exists is an error of kind KindAlreadyExists.
package access
