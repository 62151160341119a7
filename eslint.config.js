// ESLint flat config: typescript-eslint's recommended rules over our sources,
// plus two type-aware rules for the mistakes a streaming server cannot afford:
// a promise nobody awaits or handles (its rejection crashes the process or
// vanishes), and a promise passed where a plain callback is expected (an
// event listener or a setTimeout callback whose rejection no one sees).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["gen/**", "dist/**", "packages/*/dist/**", "node_modules/**", "bench/results/**", "web/dist/**", "test/python/gen/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    // Plain JavaScript (examples a reader runs with `node`, build scripts) runs on Node: its globals are defined.
    files: ["**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly", fetch: "readonly" } },
  },
  {
    // Type information comes from tsconfig.json (every TypeScript file of the repository is in it).
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
);
