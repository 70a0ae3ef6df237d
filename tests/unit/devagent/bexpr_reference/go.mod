module bexprreference

go 1.22

require github.com/hashicorp/go-bexpr v0.1.2
