// Package bundle loads bundle configs (Cog cog_bundle_version 3, 4 and 5;
// Gort gort_bundle_version 1), YAML or JSON, into one model and validates
// them. It does no I/O: callers hand Load the bytes.
//
// # Two passes
//
// Load first walks the yaml.Node tree (JSON is YAML, so both take one path)
// and checks the schema: field names, types and required fields, reporting
// "line N: ..." for every problem rather than stopping at the first. The
// same walk catches, in every mapping, a key written twice, which a YAML
// decoder would resolve silently by keeping the last one. A repeated key is
// an error naming the repeating line and the line of the first, with one
// exception: a command's rules: list written twice (one published Cog v4
// bundle does this) loads with a warning naming both lines, and the rules of
// both lists are kept, so the first list's permission check is never
// dropped. Equally specific rules must all be satisfied, so the stricter
// rule decides. It also
// rejects aliases and merge keys, which no real bundle uses and which let a
// small document expand into a huge one; documents above 1 MiB are refused
// before parsing.
//
// The second pass checks meaning: every rule parses (short forms are
// expanded for their command), names its own bundle and command, and
// requires only permissions the bundle declares or site: ones; the version
// is N.N or N.N.N; bundle, command, option and environment variable names
// are valid; a docker section names an image and a tag; each command's
// short flags are unique; Gort triggers are valid regular expressions;
// every template parses (Greenbar for Cog, Go templates with Gort's
// functions for Gort), a problem reported on the file line it is on.
//
// Problems carry a Kind (syntax, schema, meaning) and a 1-based line.
// Warnings never make a config invalid.
//
// # Decisions
//
//   - Unknown fields are errors, not warnings, in every format: a misspelt
//     "rule:" would otherwise load a command without its rules. The fields
//     Cog bundles use beyond Cog's own schema (documentation, notes,
//     subcommands, examples, long_description, config.env, enforcing,
//     per-provider templates) are known and accepted.
//   - cog_bundle_version 3 loads with a deprecation warning: its shape is
//     v4's apart from per-provider templates (kept in Template.Providers,
//     Mustache, parsed by the meaning pass) and an optional description. Versions 2 and below are refused with an
//     error that says how to upgrade: they predate rules on every command.
//   - enforcing: is accepted and ignored with a warning: Logbook always
//     enforces rules, so enforcing: false cannot open a command to everyone.
//   - A bundle without a docker section (Cog's "simple" bundle) loads with a
//     warning, since its executables live on the host. A docker section must
//     name both image and tag. A Gort bundle must name an image; one
//     without a tag gets Gort's default, latest, with a warning.
//   - A short flag declared by two options of one command is bound to
//     neither (Option.ShortFlag is cleared and OptionByShort finds nothing),
//     with a warning: two published Cog bundles repeat a letter, and picking
//     one option would guess. Every other meaning problem is an error.
//   - Gort lists permissions without their namespace; the model qualifies
//     them ("view" in bundle ec2 becomes "ec2:view").
//   - Cog v4 output: is a string, v5 output: is {description, example}.
//
// # Execution settings
//
// Logbook adds an execution: section, at the bundle level and as a
// per-command override, in every format:
//
//	execution:
//	  mode: warm        # fresh (a new container per invocation), warm (pooled, reused) or single-use (pooled, used once)
//	  timeout: 30s      # Go duration, above zero
//	  memory: 256MiB    # bytes, or a number with B, KB, MB, GB, KiB, MiB, GiB; at least 6MiB
//	  cpu: 0.5          # CPUs, above 0, at most 1024
//	  pids: 128         # process limit, 1 to the site's maximum (1024 unless configured)
//	  output_cap: 1MiB  # bytes of output kept before the run is truncated
//	  user: 1000        # numeric uid (gid the same) or "uid:gid"; 65534:65534 when unset
//	commands:
//	  deploy:
//	    execution:
//	      timeout: 10m  # overrides only the timeout
//
// Every setting is optional and "unset" stays distinguishable (nil, or
// ModeUnset): Command.EffectiveExecution overlays the command's settings on
// the bundle's, and the executor applies its defaults to what is still
// unset. Cog v3's execution: once|multiple (a string) is read as Cog read
// it: multiple is ignored with a warning, once is refused.
//
// The site's pids maximum is checked by LoadForSite (validating and
// installing), not by Load, so a config stored under a higher maximum
// still loads; its runs are held to the maximum. A command that would run
// warm or single-use as uid 0 is an error: the agent that starts it runs
// as root, and a command with the agent's uid could reach it (and, warm,
// the runs after its own).
//
// # Quotas
//
// The bundle's execution section may also bound how much of it runs, for
// the whole bundle only (a command's own is an error):
//
//	execution:
//	  concurrency:
//	    bundle: 4       # runs of the bundle's commands in flight
//	    user: 1         # ... of one user
//	    room: 2         # ... from one room
//	  rate: 10          # requests one user may start with the bundle in a minute
//	  queue: 30s        # how long a request over a quota waits; 0s refuses at once
//
// Counts are 1 to 1,000,000; queue is 0s to 1h. The site overrides them
// (ParseQuotaOverrides reads LOGBOOK_QUOTAS: ops.concurrency.user=1,
// *.rate=30), where 0 means no bound: QuotaOverrides.For gives the site's
// setting for the bundle, else the bundle's, else the site's default.
//
// # Approvals
//
// A rule may ask for approval (`must have ops:deploy with 2 approvals from
// ops:approver`, see domain/rules); the approvers' permission must be the
// bundle's own and declared, or a site: one, as a required one must. The
// approvals section names the approvers' room, where each approval request
// is posted besides the request's own room:
//
//	approvals:
//	  room: ops-approvals   # a leading # is not part of the name
//	  provider: slack       # optional: the room's provider; else the request's
//
// A room set while no rule asks for approval is a warning.
package bundle
