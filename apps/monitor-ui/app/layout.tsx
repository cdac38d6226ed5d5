import type { ReactNode } from "react";

export const metadata = {
  title: "AegisTrader monitor",
  description: "Readiness and version of the AegisTrader monitor API",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <head>
        <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
      </head>
      <body style={{ fontFamily: "system-ui, sans-serif", margin: "2rem", maxWidth: "48rem" }}>
        {children}
      </body>
    </html>
  );
}
