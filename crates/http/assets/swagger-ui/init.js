// Starts Swagger UI on sessiond's own OpenAPI document. Nothing here, nor
// in the bundle, loads anything from another origin.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api-docs/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // "Try it out" keeps the bearer token across reloads of the page.
    persistAuthorization: true,
    displayOperationId: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The public validator would be a request to another origin.
    validatorUrl: null,
  });
});
