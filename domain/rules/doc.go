// Package rules is the Cog rule language: who may run which command, with
// which arguments and options. It parses rules, evaluates them against an
// invocation and a user's permissions, and explains the outcome.
//
//	when command is deploy:ship with arg[0] == 'prod' and option[force] == true must have site:prod and deploy:ship
//	when command is deploy:status allow
//
// The package is pure: no I/O. Whoever holds the user's permissions passes a
// has(perm) function to Evaluate.
//
// # Grammar
//
//	rule        = [ "when" "command" "is" ] name [ "with" criteria ] ( "allow" | "must" "have" permissions ) [ "with" approval ]
//	approval    = "approval" "from" name | N ( "approval" | "approvals" ) "from" name   (N from 1 to 100; "approval" only for 1)
//	criteria    = cterm [ ( "and" | "or" ) criteria ]
//	cterm       = "(" criteria ")" | subject op value | subject "in" "[" value { "," value } "]"
//	subject     = "arg" "[" N "]" | ( "any" | "all" ) ( "args" | "arg" )
//	            | "option" "[" optname "]" | ( "any" | "all" ) ( "options" | "option" )
//	op          = "==" | "!=" | "<" | ">" | "<=" | "=<" | ">=" | "=>"
//	value       = 'text' | "text" | bareword | integer | float | "true" | "false" | /regexp/
//	permissions = pterm [ ( "and" | "or" ) permissions ]
//	pterm       = "(" permissions ")" | name | ( "any" | "all" ) "in" "[" name { "," name } "]"
//	name        = ns ":" local   (letters, digits, _ and -; bare or quoted)
//
// Keywords are lowercase; `AND` is a bare word, not a connective. Commands and
// permissions must be namespaced; `site:` is the namespace of permissions
// operators make. Cog writes less-or-equal as `=<`; `<=` is accepted too, and
// `=>` beside `>=`. String() writes `<=` and `>=`. Gort's spelling without
// `when command is` (`foo:bar with ... allow`) parses to the same rule. Inside
// a bundle's command config, ParseForCommand also takes the short forms
// `allow`, `must have ...` and `with ... must have ...`/`with ... allow`.
//
// Values: a bare word that reads as an integer (-12) is an int, one that reads
// as a decimal (0.55) a float, `true`/`false` (lowercase only) booleans, and
// any other bare word (us-east-1, 1.2.3, True) text. Quoted strings are text;
// a backslash makes the next character literal. A regular expression is
// written /.../ with \/ for a slash; it uses Go's RE2 syntax (no look-around
// or back-references, which Cog's PCRE had) and matches anywhere in the value
// unless anchored. Empty lists are rejected, as are regular expressions in
// permission lists (Cog parsed them but never matched them).
//
// # Grouping: and/or have equal precedence and group from the right
//
// As in Cog, in criteria and in permission expressions alike:
// `a and b or c` means `a and (b or c)`, and `a or b and c` means
// `a or (b and c)`. This differs from most languages, on purpose: migrated
// rules must decide as they did in Cog. Warnings() flags a clause that mixes
// the two without parentheses and spells out the grouping.
//
// # Matching an invocation
//
// Comparisons are case-sensitive. Numbers compare numerically (1 == 1.0);
// text compares byte-wise (so < and > order text); values of different kinds
// are never equal and never ordered: "5" (text) is not 5 (a number), and no
// <, >, <= or >= holds between text and a number; true and false only take ==
// and !=. A regular expression is matched against the text of the value
// (numbers and booleans as written). `in [...]` holds when the value equals
// (or matches) any item.
//
// A missing argument or option (arg[3] of a two-argument invocation, an
// option not given) matches no criterion at all: not ==, regex, <, > or in,
// and — unlike Cog — not != either. Cog treated `arg[1] != 'prod'` as true
// when there was no arg[1]; Logbook does not, so a rule that relaxes
// requirements "when not prod" cannot be triggered by leaving the value
// out. Migrated rules using != can therefore match fewer invocations;
// Warnings() points each such comparison out.
//
// A repeated option's value is a list. `option[x] != v` holds when no item
// equals v (no item matches, for a regular expression); every other test
// holds when some item satisfies it. So `--env staging --env prod` matches
// `option[env] == 'prod'` and does not match `option[env] != 'prod'`.
//
// `any args` / `all args` quantify over the arguments, `any options` /
// `all options` over the values of the options given (each option's value
// taken as above), as Cog does. Over an invocation without arguments (or
// options), `all args <op> x` is vacuously true, as in Cog; `all args in
// [...]` is false there, also as in Cog, and no `any` form holds.
//
// # Deciding
//
// Every rule for the invocation's command is considered. A rule matches when
// its criteria hold (a rule without `with` always matches). Among the
// matching rules the most specific decide. Specificity is Cog's score: the
// number of distinct inputs (argument positions and option names) that the
// criteria matched for this invocation. `with arg[0] == 'prod'` scores 1,
// `with arg[0] == 'disable' and arg[1] == 'prod'` scores 2, a rule without
// criteria 0; for `or` only the sides that held count, and `any args == x`
// counts every argument equal to x.
//
// The command is allowed when every one of the most specific matching rules
// is satisfied (an `allow` rule always is). Cog let any one of equally
// specific rules allow; Logbook requires all of them, so adding a rule can
// only tighten access at its level. When no rule matches, the command is
// denied.
//
// # Approvals
//
// A rule may end with an approval clause: `... must have deploy:run with 2
// approvals from deploy:approver` (or `with approval from ...` for one, and
// `allow with approval from ...` to let anyone ask). It does not change who
// may run the command; it says what must happen before an allowed
// invocation runs: that many people other than the requester, each holding
// the named permission when they answer, approve the request. The words
// approval, approvals and from are not keywords (criteria may still compare
// with them as bare values); the clause is only read after `allow` or the
// permission expression. Permissions() does not list the approvers'
// permission, since the requester need not hold it; Approval() gives the
// clause. Decision.Approvals lists what an allowed invocation needs: the
// clauses of the deciding rules, one per approver permission, with the
// largest count where equally specific rules name the same permission
// (all of them hold, as for their requirements).
//
// Decision.Explain says which rule decided, what it required, and what the
// user had or lacked; Decision.Explanation is the same as data for JSON.
package rules
