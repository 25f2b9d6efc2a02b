# syntax = docker/dockerfile
# escape = `

FROM `
    image
