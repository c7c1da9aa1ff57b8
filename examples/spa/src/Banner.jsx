/** Its own module so that the hot-reload test can edit it (the page updates without a reload). */
export function Banner() {
  return <h1 data-testid="banner">Orders</h1>;
}
