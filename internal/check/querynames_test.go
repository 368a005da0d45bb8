package check

import "testing"

// TestQueryNamesSpellings: every spelling of a credential parameter a
// lenient framework reads is found, whichever byte gives it its '_', and
// a query without any such byte is passed over only for names that have
// an '_'.
func TestQueryNamesSpellings(t *testing.T) {
	for _, q := range []string{
		"access_token=x", "limit=10&ACCESS_TOKEN=x", "access.token=x", "access+token=x",
		"access%5Ftoken=x", "access%5ftoken=x", "access[token=x", "access_token[]=x", "a=1;access_token=x",
		"%61ccess_token=x",
	} {
		if !queryNames(q, credentialParams, true) {
			t.Errorf("%q: credential not found", q)
		}
	}
	for _, q := range []string{"", "limit=10", "a=b&c=d;e", "accesstoken=x", "access-token=x"} {
		if queryNames(q, credentialParams, true) {
			t.Errorf("%q: credential found", q)
		}
	}
	if !queryNames("token=x", []string{"token"}, true) {
		t.Error("a name without '_' was not looked for")
	}
}
