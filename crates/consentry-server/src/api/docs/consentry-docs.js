// Starts Swagger UI on the API's OpenAPI document. A served file rather than an inline script, so
// that the page keeps a CSP without 'unsafe-inline'. Relative URLs: the page is /api/v1/docs.
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    // Without deep links: they put a link inside each operation's toggle button (nested controls).
    deepLinking: false,
    // No call to an outside validator: the page talks to this server only.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
  // Swagger UI's code samples scroll but cannot take the keyboard's focus: make them focusable so
  // that keyboard users can scroll them (WCAG 2.1.1).
  const focusable = function () {
    document.querySelectorAll('.swagger-ui pre.microlight:not([tabindex])').forEach(function (pre) {
      pre.setAttribute('tabindex', '0');
    });
  };
  new MutationObserver(focusable).observe(document.getElementById('swagger-ui'), {
    childList: true,
    subtree: true,
  });
});
