package suite

import "testing"

func TestJUnitClass(t *testing.T) {
	for in, want := range map[string]string{
		"examples/policies/tests/apis_test.yaml": "examples.policies.tests.apis_test",
		"./a_test.yml":                           "a_test",
		"../../x/b_test.yaml":                    "x.b_test",
		"/tmp/dir.d/c_test.yaml":                 "tmp.dir.d.c_test",
	} {
		if got := junitClass(in); got != want {
			t.Errorf("junitClass(%q) = %q, want %q", in, got, want)
		}
	}
}
