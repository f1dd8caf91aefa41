"""The embedded AWS and the local Lambda runtime: what `make invoke`, `make aws`, `make engine`,
`make sam-local` and the tests run, apart from the operator scripts beside this package."""
