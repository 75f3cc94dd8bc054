import { defineCatalogue } from '../catalogue.js'

export const dashboardCatalogue = defineCatalogue({
  errors: { dashboard_not_built: 503 },
})
