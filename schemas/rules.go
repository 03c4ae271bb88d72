package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Rule kinds: what a rule of a mapping does to a row's field values after
// the columns are mapped, in the order the rules are listed.
const (
	RuleSet      = "set"      // field = value (when the condition holds)
	RuleDefault  = "default"  // field = value when the field is empty
	RuleReplace  = "replace"  // regular-expression replacement in the field
	RuleMap      = "map"      // the field's whole value through a table
	RuleExclude  = "exclude"  // leave the row out of the upload
	RuleCategory = "category" // the partner's category path to the shop's taxonomy
)

// RuleKinds lists the rule kinds a mapping accepts.
var RuleKinds = []string{RuleSet, RuleDefault, RuleReplace, RuleMap, RuleExclude, RuleCategory}

// Rule is one step of a mapping's rules. Kind says which fields apply:
//
//	{"kind": "set", "field": "brand", "value": "Acme", "when": {"field": "brand", "empty": true}}
//	{"kind": "default", "field": "availability", "value": "in stock"}
//	{"kind": "replace", "field": "title", "pattern": "(?i)\\s*free shipping$", "with": ""}
//	{"kind": "map", "field": "availability", "table": {"1": "in stock", "2": "out of stock"}}
//	{"kind": "exclude", "when": {"field": "brand", "in": ["Sample", "Test"]}}
//	{"kind": "category", "table": {"Shoes > Running": "Sport > Running shoes"}, "otherwise": "Other"}
//
// Every kind but exclude may carry a condition (When) too; the rule then
// applies only to rows for which all of its conditions hold.
type Rule struct {
	Name    string            `json:"name,omitempty"` // a label for messages
	Kind    string            `json:"kind"`
	Field   string            `json:"field,omitempty"`
	Value   *string           `json:"value,omitempty"`   // set, default
	Pattern string            `json:"pattern,omitempty"` // replace: an RE2 regular expression
	With    *string           `json:"with,omitempty"`    // replace: the replacement ($1 names a group)
	Table   map[string]string `json:"table,omitempty"`   // map, category
	// IgnoreCase matches a map table's keys regardless of case; category
	// tables always do.
	IgnoreCase bool       `json:"ignore_case,omitempty"`
	Otherwise  *string    `json:"otherwise,omitempty"` // map, category: the value of what the table lacks
	When       Conditions `json:"when,omitempty"`
}

// Condition tests one field of a row; exactly one test is given. Text
// comparisons ignore case and surrounding space; Matches is a regular
// expression, case-sensitive unless it starts with (?i).
type Condition struct {
	Field     string   `json:"field"`
	Equals    *string  `json:"equals,omitempty"`
	NotEquals *string  `json:"not_equals,omitempty"`
	In        []string `json:"in,omitempty"`
	Contains  string   `json:"contains,omitempty"`
	Matches   string   `json:"matches,omitempty"`
	Empty     *bool    `json:"empty,omitempty"`
}

// Conditions all have to hold. In JSON one condition may be written
// alone, without the list around it.
type Conditions []Condition

// UnmarshalJSON accepts {…} or [{…}, …].
func (c *Conditions) UnmarshalJSON(b []byte) error {
	var one Condition
	if err := json.Unmarshal(b, &one); err == nil {
		*c = Conditions{one}
		return nil
	}
	var many []Condition
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*c = many
	return nil
}

// label names a rule in messages: its place, its name and what it does.
func (r Rule) label(i int) string {
	what := strings.TrimSpace(r.Kind + " " + r.Field)
	if r.Name != "" {
		return fmt.Sprintf("rule %d %q (%s)", i+1, r.Name, what)
	}
	return fmt.Sprintf("rule %d (%s)", i+1, what)
}

// ruleTargets are the fields a rule may change: not the id, which names
// the product, and not what makes a row a deletion or an update.
func ruleTarget(name string) (field, bool) {
	f, ok := parseField(name)
	if !ok || f == fieldID || f == fieldDeleted || f == fieldOperation {
		return 0, false
	}
	return f, true
}

// validateRules reports every problem of a mapping's rules, each naming
// its rule.
func validateRules(rules []Rule) []string {
	var problems []string
	for i, r := range rules {
		add := func(format string, args ...any) {
			problems = append(problems, r.label(i)+": "+fmt.Sprintf(format, args...))
		}
		takes := map[string]bool{}
		switch r.Kind {
		case RuleSet, RuleDefault:
			takes["field"], takes["value"] = true, true
			if r.Value == nil {
				add(`needs a "value"`)
			} else if r.Kind == RuleDefault && strings.TrimSpace(*r.Value) == "" {
				add("an empty default changes nothing; give a value")
			}
		case RuleReplace:
			takes["field"], takes["pattern"], takes["with"] = true, true, true
			if r.Pattern == "" {
				add(`needs a "pattern" (a regular expression)`)
			} else if _, err := regexp.Compile(r.Pattern); err != nil {
				add("pattern %q is not a valid regular expression: %s", r.Pattern, regexpReason(err))
			}
			if r.With == nil {
				add(`needs "with", the replacement ("" removes what the pattern matches)`)
			}
		case RuleMap:
			takes["field"], takes["table"], takes["ignore_case"], takes["otherwise"] = true, true, true, true
			if len(r.Table) == 0 {
				add(`needs a "table" from values to what they become`)
			}
			if r.IgnoreCase {
				seen := map[string]string{}
				for _, k := range sortedKeys(r.Table) {
					lk := strings.ToLower(strings.TrimSpace(k))
					if other, dup := seen[lk]; dup && r.Table[other] != r.Table[k] {
						add("table keys %q and %q are the same ignoring case but map to different values", other, k)
					}
					seen[lk] = k
				}
			}
		case RuleExclude:
			if len(r.When) == 0 {
				add(`needs "when": the condition of the rows to leave out`)
			}
		case RuleCategory:
			takes["table"], takes["otherwise"] = true, true
			if len(r.Table) == 0 {
				add(`needs a "table" from the partner's categories to the shop's`)
			}
			for _, k := range sortedKeys(r.Table) {
				if len(splitCategory(k)) == 0 {
					add("table has an empty category as a key")
				}
			}
		case "":
			add(`needs a "kind": one of %s`, strings.Join(RuleKinds, ", "))
			continue
		default:
			add("kind %q is not one of %s", r.Kind, strings.Join(RuleKinds, ", "))
			continue
		}
		if takes["field"] {
			if r.Field == "" {
				add(`needs a "field"`)
			} else if _, ok := ruleTarget(r.Field); !ok {
				add("field %q cannot be changed by a rule; use one of %s", r.Field, strings.Join(ruleFields(), ", "))
			}
		} else if r.Field != "" {
			add(`takes no "field"`)
		}
		for key, given := range map[string]bool{
			"value": r.Value != nil, "pattern": r.Pattern != "", "with": r.With != nil, "table": r.Table != nil,
			"ignore_case": r.IgnoreCase, "otherwise": r.Otherwise != nil,
		} {
			if given && !takes[key] {
				add("takes no %q", key)
			}
		}
		for j, c := range r.When {
			for _, p := range c.problems() {
				add("condition %d: %s", j+1, p)
			}
		}
	}
	return problems
}

// ruleFields are the field names rules may change, sorted.
func ruleFields() []string {
	var out []string
	for _, name := range MappingFields() {
		if _, ok := ruleTarget(name); ok {
			out = append(out, name)
		}
	}
	return out
}

func (c Condition) problems() []string {
	var out []string
	if c.Field == "" {
		out = append(out, `needs a "field"`)
	} else if _, ok := parseField(c.Field); !ok {
		out = append(out, fmt.Sprintf("field %q is not one of %s", c.Field, strings.Join(MappingFields(), ", ")))
	}
	tests := 0
	for _, given := range []bool{c.Equals != nil, c.NotEquals != nil, c.In != nil, c.Contains != "", c.Matches != "", c.Empty != nil} {
		if given {
			tests++
		}
	}
	if tests != 1 {
		out = append(out, fmt.Sprintf("give exactly one of equals, not_equals, in, contains, matches, empty (it has %d)", tests))
	}
	if c.Matches != "" {
		if _, err := regexp.Compile(c.Matches); err != nil {
			out = append(out, fmt.Sprintf("matches %q is not a valid regular expression: %s", c.Matches, regexpReason(err)))
		}
	}
	return out
}

// regexpReason is what regexp says is wrong, without repeating the pattern.
func regexpReason(err error) string {
	var e *syntax.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	return err.Error()
}

// compiledRule is a rule ready to run on rows.
type compiledRule struct {
	kind      string
	field     field
	value     string
	re        *regexp.Regexp
	with      string
	table     map[string]string // keys as they are matched (folded when ignoring case)
	fold      bool
	otherwise *string
	when      []compiledCondition
	// categories are a category table's keys as level paths, longest first.
	categories []categoryEntry
}

type categoryEntry struct {
	levels []string // lower case
	to     string
}

type compiledCondition struct {
	field    field
	test     string // equals, not_equals, in, contains, matches, empty
	text     string // lower case
	in       map[string]bool
	re       *regexp.Regexp
	empty    bool
	category bool
}

// compileRules prepares valid rules; a rule that does not compile (it was
// never validated) is left out.
func compileRules(rules []Rule) []compiledRule {
	out := make([]compiledRule, 0, len(rules))
	for _, r := range rules {
		if len(validateRules([]Rule{r})) > 0 {
			continue
		}
		c := compiledRule{kind: r.Kind, otherwise: r.Otherwise, fold: r.IgnoreCase}
		c.field, _ = ruleTarget(r.Field)
		if r.Value != nil {
			c.value = clean(*r.Value)
		}
		if r.Pattern != "" {
			c.re = regexp.MustCompile(r.Pattern)
		}
		if r.With != nil {
			c.with = *r.With
		}
		switch r.Kind {
		case RuleMap:
			c.table = make(map[string]string, len(r.Table))
			for k, v := range r.Table {
				k = clean(k)
				if c.fold {
					k = strings.ToLower(k)
				}
				c.table[k] = v
			}
		case RuleCategory:
			c.field = fieldCategory
			for _, k := range sortedKeys(r.Table) {
				levels := splitCategory(k)
				for i := range levels {
					levels[i] = strings.ToLower(levels[i])
				}
				c.categories = append(c.categories, categoryEntry{levels: levels, to: r.Table[k]})
			}
			// The most specific entry wins: "Shoes > Running" before "Shoes".
			for i := 1; i < len(c.categories); i++ {
				for j := i; j > 0 && len(c.categories[j].levels) > len(c.categories[j-1].levels); j-- {
					c.categories[j], c.categories[j-1] = c.categories[j-1], c.categories[j]
				}
			}
		}
		for _, cond := range r.When {
			cc := compiledCondition{}
			cc.field, _ = parseField(cond.Field)
			cc.category = cc.field == fieldCategory
			switch {
			case cond.Equals != nil:
				cc.test, cc.text = "equals", strings.ToLower(clean(*cond.Equals))
			case cond.NotEquals != nil:
				cc.test, cc.text = "not_equals", strings.ToLower(clean(*cond.NotEquals))
			case cond.In != nil:
				cc.test, cc.in = "in", make(map[string]bool, len(cond.In))
				for _, v := range cond.In {
					cc.in[strings.ToLower(clean(v))] = true
				}
			case cond.Contains != "":
				cc.test, cc.text = "contains", strings.ToLower(clean(cond.Contains))
			case cond.Matches != "":
				cc.test, cc.re = "matches", regexp.MustCompile(cond.Matches)
			case cond.Empty != nil:
				cc.test, cc.empty = "empty", *cond.Empty
			}
			c.when = append(c.when, cc)
		}
		out = append(out, c)
	}
	return out
}

// fieldValues are a row's canonical field values as text, after the column
// mapping and the rules. carried says whether a field has a value from the
// row (a column, or a rule), not from the mapping's defaults: an update row
// changes only what it carries.
type fieldValues struct {
	text    [numFields]string
	carried [numFields]bool
}

// holds reports whether every condition holds for the values.
func (c *compiledRule) holds(v *fieldValues) bool {
	for i := range c.when {
		if !c.when[i].holds(v) {
			return false
		}
	}
	return true
}

func (c *compiledCondition) holds(v *fieldValues) bool {
	text := v.text[c.field]
	if c.category {
		text = strings.Join(splitCategory(text), " > ")
	}
	low := strings.ToLower(text)
	switch c.test {
	case "equals":
		return low == c.text
	case "not_equals":
		return low != c.text
	case "in":
		return c.in[low]
	case "contains":
		return strings.Contains(low, c.text)
	case "matches":
		return c.re.MatchString(text)
	case "empty":
		return (text == "") == c.empty
	}
	return false
}

// apply runs one rule on the values; it reports whether the rule excludes
// the row. partial rows (updates) take no defaults.
func (c *compiledRule) apply(v *fieldValues, partial bool) (excluded bool) {
	if !c.holds(v) {
		return false
	}
	f := c.field
	switch c.kind {
	case RuleExclude:
		return true
	case RuleSet:
		v.text[f], v.carried[f] = c.value, true
	case RuleDefault:
		if v.text[f] == "" && !partial {
			v.text[f] = c.value
		}
	case RuleReplace:
		if v.text[f] != "" {
			v.text[f] = clean(c.re.ReplaceAllString(v.text[f], c.with))
		}
	case RuleMap:
		if v.text[f] == "" {
			return false
		}
		key := v.text[f]
		if c.fold {
			key = strings.ToLower(key)
		}
		if to, ok := c.table[key]; ok {
			v.text[f] = clean(to)
		} else if c.otherwise != nil {
			v.text[f] = clean(*c.otherwise)
		}
	case RuleCategory:
		levels := splitCategory(v.text[f])
		if len(levels) == 0 {
			return false
		}
		for _, e := range c.categories {
			if hasLevels(levels, e.levels) {
				v.text[f] = e.to
				return false
			}
		}
		if c.otherwise != nil {
			v.text[f] = *c.otherwise
		}
	}
	return false
}

// hasLevels reports whether path starts with prefix, ignoring case.
func hasLevels(path, prefix []string) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i, p := range prefix {
		if strings.ToLower(path[i]) != p {
			return false
		}
	}
	return true
}
