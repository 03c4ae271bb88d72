package bench

import "testing"

func TestMemoryConfigRefusesDaysItCannotRun(t *testing.T) {
	t.Parallel()
	ok := DefaultMemoryConfig()
	ok.Binary, ok.Days, ok.Posts = "feedline", 10, 1_000_000
	if err := ok.Validate(); err != nil {
		t.Fatalf("ten days and a million posts: %v", err)
	}
	for name, change := range map[string]func(*MemoryConfig){
		"negative days":       func(c *MemoryConfig) { c.Days = -1 },
		"no shoppers":         func(c *MemoryConfig) { c.Users = 0 },
		"nothing changed":     func(c *MemoryConfig) { c.Changed = 0 },
		"more than all":       func(c *MemoryConfig) { c.Changed = 1.5 },
		"not a duration":      func(c *MemoryConfig) { c.CompactEvery = "hourly" },
		"negative post count": func(c *MemoryConfig) { c.Posts = -5 },
	} {
		c := ok
		change(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
