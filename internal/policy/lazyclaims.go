package policy

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/extauthz/extauthz/internal/token"
)

// lazyClaims is CEL's `claims` for a token whose claims are read lazily (a
// cached token's view): `claims.sub`, `claims.?tenant`, `has(claims.x)` and
// `'x' in claims` read the one claim from the payload, so a header that
// names two claims costs two lookups, not the whole map rebuilt on every
// cache hit. Everything else (size, iteration, equality, conversion) works
// on the whole map, built on first use. Values are converted as CEL
// converts the plain map's: the same Go types, through the same adapter.
type lazyClaims struct {
	src  token.ClaimReader
	full traits.Mapper
}

var (
	_ traits.Mapper = (*lazyClaims)(nil)
	_ ref.Val       = (*lazyClaims)(nil)
)

func (c *lazyClaims) whole() traits.Mapper {
	if c.full == nil {
		c.full = types.DefaultTypeAdapter.NativeToValue(c.src.Claims()).(traits.Mapper)
	}
	return c.full
}

// Find implements traits.Mapper: the qualifier of a field selection.
func (c *lazyClaims) Find(key ref.Val) (ref.Val, bool) {
	name, ok := key.(types.String)
	if !ok || c.full != nil {
		return c.whole().Find(key)
	}
	v, found := c.src.Claim(string(name))
	if !found {
		return nil, false
	}
	return types.DefaultTypeAdapter.NativeToValue(v), true
}

// Get implements traits.Indexer: claims["x"], an error when absent.
func (c *lazyClaims) Get(key ref.Val) ref.Val {
	if v, found := c.Find(key); found {
		return v
	}
	return c.whole().Get(key)
}

// Contains implements traits.Container: 'x' in claims.
func (c *lazyClaims) Contains(key ref.Val) ref.Val {
	if name, ok := key.(types.String); ok && c.full == nil {
		_, found := c.src.Claim(string(name))
		return types.Bool(found)
	}
	return c.whole().Contains(key)
}

func (c *lazyClaims) Iterator() traits.Iterator { return c.whole().Iterator() }
func (c *lazyClaims) Size() ref.Val             { return c.whole().Size() }
func (c *lazyClaims) Equal(other ref.Val) ref.Val {
	return c.whole().Equal(other)
}
func (c *lazyClaims) ConvertToNative(t reflect.Type) (any, error) {
	return c.whole().ConvertToNative(t)
}
func (c *lazyClaims) ConvertToType(t ref.Type) ref.Val { return c.whole().ConvertToType(t) }
func (c *lazyClaims) Type() ref.Type                   { return types.MapType }
func (c *lazyClaims) Value() any                       { return c.src.Claims() }
