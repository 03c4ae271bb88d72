package schemas

import (
	"slices"
	"testing"
)

func TestWithinEdits(t *testing.T) {
	for _, c := range []struct {
		a, b string
		k    int
		want bool
	}{
		{"kettel", "kettle", 1, true},
		{"muose", "mouse", 1, true},
		{"maise", "mouse", 1, false},
		{"maise", "mouse", 2, true},
		{"mose", "mouse", 1, true},
		{"kyeboadr", "keyboard", 2, true},
		{"kyeboadr", "keyboard", 1, false},
		{"헤드펀", "헤드폰", 0, false},
		{"same", "same", 0, true},
		{"", "ab", 2, true},
		{"abc", "", 2, false},
	} {
		if got := WithinEdits(c.a, c.b, c.k); got != c.want {
			t.Errorf("WithinEdits(%q, %q, %d) = %v, want %v", c.a, c.b, c.k, got, c.want)
		}
	}
}

func TestParseText(t *testing.T) {
	q := ParseText(" Blue, ket ", nil, nil)
	var words []string
	for _, w := range q.Words {
		words = append(words, w.Text)
	}
	if !slices.Equal(words, []string{"Blue", "ket"}) {
		t.Fatalf("words %q", words)
	}
	if !q.Words[0].Forgiving || q.Words[0].Prefix || !q.Words[1].Prefix {
		t.Errorf("words %+v: want both forgiving, the last a prefix", q.Words)
	}
	for _, s := range []string{"헤드펀", "s24", "wi-fi", "ke"} {
		w := ParseText(s, nil, nil).Words[0]
		if s != "ke" && w.Forgiving {
			t.Errorf("%q is forgiving", s)
		}
		if w.Prefix {
			t.Errorf("%q is a prefix", s)
		}
	}
	if got := ParseText("노트북 s24 case", nil, nil).Remainder(); got != "노트북 s24" {
		t.Errorf("remainder %q", got)
	}
}

func TestThesaurus(t *testing.T) {
	th := NewThesaurus(SynonymList{Groups: [][]string{{"TV", "television"}, {"wireless earbuds", "무선 이어폰"}}},
		map[string]SynonymList{"b": {Groups: [][]string{{"노트북", "Laptop"}}}, "a": {Groups: [][]string{{"노트북", "laptop", "notebook"}}}})
	q := ParseText("cheap Wireless Earbuds tv", th, nil)
	if len(q.Synonyms) != 2 || q.Synonyms[0].From != 1 || q.Synonyms[0].To != 3 || q.Synonyms[0].Alternatives[0].Term != "무선 이어폰" {
		t.Errorf("synonyms %+v", q.Synonyms)
	}
	q = ParseText("노트북", th, nil)
	want := []SynonymAlternative{{Term: "laptop", Partners: []string{"a", "b"}}, {Term: "notebook", Partners: []string{"a"}}}
	if len(q.Synonyms) != 1 || !slices.EqualFunc(q.Synonyms[0].Alternatives, want, func(x, y SynonymAlternative) bool {
		return x.Term == y.Term && slices.Equal(x.Partners, y.Partners)
	}) {
		t.Errorf("노트북: %+v, want %+v", q.Synonyms, want)
	}
	if q := ParseText("노트북", th, []string{"c"}); len(q.Synonyms) != 0 {
		t.Errorf("노트북 in partner c: %+v", q.Synonyms)
	}
}

func TestSynonymListValidate(t *testing.T) {
	for _, l := range []SynonymList{
		{Groups: [][]string{{"a"}}},
		{Groups: [][]string{{"a", " "}}},
		{Groups: [][]string{{"a", "A"}}},
		{Groups: [][]string{{"a", "one two three four five"}}},
		{Groups: [][]string{{"a", string(make([]rune, 65))}}},
	} {
		if err := l.Validate(); err == nil {
			t.Errorf("%q: valid", l.Groups)
		}
	}
	if err := (SynonymList{Groups: [][]string{{"노트북", "laptop"}}}).Validate(); err != nil {
		t.Errorf("valid list: %v", err)
	}
}
