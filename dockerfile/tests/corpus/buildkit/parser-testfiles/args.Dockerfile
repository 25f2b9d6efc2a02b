ARG foo bar=baz
FROM ubuntu
ARG abc="123 456" def
