// Command bexprreference answers, for each JSON line on stdin, what go-bexpr v0.1.2 (the
// version Consul 1.20 builds with) makes of it, one JSON line per input on stdout:
//
//	{"parse": "<expression>"}       -> {"ast": "<tree>"} or {"error": "<parse error>"}
//	{"parse_int": "<text>"}         -> {"value": "<int64>"} or {"error": "<strconv error>"}
//	{"parse_uint8": "<text>"}       -> {"value": "<uint8>"} or {"error": "<strconv error>"}
//
// The tree is written as and(l,r), or(l,r), not(e) and match(["sel",...],Operator,"raw"|nil),
// the form tests/unit/devagent/test_bexpr.py writes its own trees in.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	bexpr "github.com/hashicorp/go-bexpr"
)

func tree(e bexpr.Expression) string {
	switch n := e.(type) {
	case *bexpr.UnaryExpression:
		return "not(" + tree(n.Operand) + ")"
	case *bexpr.BinaryExpression:
		op := "and"
		if n.Operator == bexpr.BinaryOpOr {
			op = "or"
		}
		return op + "(" + tree(n.Left) + "," + tree(n.Right) + ")"
	case *bexpr.MatchExpression:
		value := "nil"
		if n.Value != nil {
			value = strconv.Quote(n.Value.Raw)
		}
		selector := ""
		for i, part := range n.Selector {
			if i > 0 {
				selector += ","
			}
			selector += strconv.Quote(part)
		}
		return fmt.Sprintf("match([%s],%s,%s)", selector, n.Operator.String(), value)
	}
	return "?"
}

func answer(request map[string]string) map[string]string {
	if expression, ok := request["parse"]; ok {
		parsed, err := bexpr.Parse("", []byte(expression))
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]string{"ast": tree(parsed.(bexpr.Expression))}
	}
	if text, ok := request["parse_int"]; ok {
		value, err := bexpr.CoerceInt64(text)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]string{"value": fmt.Sprint(value)}
	}
	if text, ok := request["parse_uint8"]; ok {
		value, err := bexpr.CoerceUint8(text)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]string{"value": fmt.Sprint(value)}
	}
	return map[string]string{"error": "unknown request"}
}

func main() {
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for lines.Scan() {
		var request map[string]string
		if err := json.Unmarshal(lines.Bytes(), &request); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := out.Encode(answer(request)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}
