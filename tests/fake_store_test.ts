import { storeContract } from "./_helpers/store_contract.ts";
import { FakeStore } from "./fake_store.ts";

storeContract({
  name: "FakeStore",
  open: () => Promise.resolve({ store: new FakeStore(), cleanup: () => Promise.resolve() }),
});
