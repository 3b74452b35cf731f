DROP TABLE account_entitlements;
